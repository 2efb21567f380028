"""Rebuild the small labelled sample datasets in this folder (see README.md).

Run from the repository root:  .venv/bin/python datasets/make_samples.py

* sample-images/: public-domain / CC0 photos bundled with scikit-image and matplotlib, each in
  eight deterministic variants (Pillow only, no randomness), one folder per ImageNet class,
  with manifest.csv, prompts.txt and clip-manifest.csv.
* sample-texts.csv / sample-texts.jsonl: short sentiment sentences written for this project.

Everything is rebuilt from scratch; running the script twice gives byte-identical files.
Labels are the true content of each photo or sentence, not a model's prediction.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

HERE = Path(__file__).resolve().parent
IMAGES = HERE / "sample-images"
LONG_SIDE = 320


def _skimage(name: str):
    def load() -> np.ndarray:
        import skimage.data

        return getattr(skimage.data, name)()

    return load


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook

    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as image:
        return np.asarray(image.convert("RGB"))


# photo name -> (loader, ImageNet class = first synonym of its label, plain words for a prompt).
# Left out: astronaut (no ImageNet class for a person in a space suit), and the bundled images that
# are not photos of an ImageNet object (coins, moon, textures, microscopy, Hubble field, retina...).
PHOTOS = {
    "chelsea": (_skimage("chelsea"), "tabby", "tabby cat"),
    "coffee": (_skimage("coffee"), "espresso", "cup of espresso"),
    "rocket": (_skimage("rocket"), "missile", "missile"),  # a launch vehicle: nearest class
    "camera": (_skimage("camera"), "tripod", "tripod"),  # the cameraman's camera on its tripod
    "clock": (_skimage("clock"), "wall clock", "wall clock"),  # motion-blurred on purpose
    "grace_hopper": (_grace_hopper, "military uniform", "military uniform"),
}


def _centre_crop(image: Image.Image, fraction: float = 0.7) -> Image.Image:
    w, h = image.size
    cw, ch = round(w * fraction), round(h * fraction)
    left, top = (w - cw) // 2, (h - ch) // 2
    return image.crop((left, top, left + cw, top + ch))


# variant -> (transformation of the resized original, JPEG quality)
VARIANTS = {
    "original": (lambda im: im, 90),
    "mirrored": (ImageOps.mirror, 90),
    "crop": (_centre_crop, 90),
    "darker": (lambda im: ImageEnhance.Brightness(im).enhance(0.5), 90),
    "blurred": (lambda im: im.filter(ImageFilter.GaussianBlur(radius=3)), 90),
    "greyscale": (lambda im: im.convert("L").convert("RGB"), 90),
    "rotated": (lambda im: im.rotate(15, resample=Image.Resampling.BICUBIC, expand=False), 90),
    "lowquality": (lambda im: im, 10),
}


def _base(rgb: np.ndarray) -> Image.Image:
    if rgb.ndim == 2:
        rgb = np.stack([rgb] * 3, axis=-1)
    image = Image.fromarray(np.ascontiguousarray(rgb[..., :3]).astype(np.uint8), "RGB")
    scale = LONG_SIDE / max(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    return image


def _write_csv(path: Path, header: list[str], rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def build_images() -> None:
    shutil.rmtree(IMAGES, ignore_errors=True)
    rows = []
    for photo, (load, label, _) in PHOTOS.items():
        base = _base(load())
        (IMAGES / label).mkdir(parents=True, exist_ok=True)
        for variant, (transform, quality) in VARIANTS.items():
            path = f"{label}/{photo}-{variant}.jpg"
            transform(base).save(IMAGES / path, "JPEG", quality=quality)
            rows.append((path, label, photo, variant))
    rows.sort()
    _write_csv(IMAGES / "manifest.csv", ["path", "label", "photo", "variant"], rows)
    prompts = {label: f"a photo of a {words}" for _, label, words in PHOTOS.values()}
    classes = sorted(prompts)
    (IMAGES / "prompts.txt").write_text("".join(prompts[c] + "\n" for c in classes), encoding="utf-8")
    _write_csv(IMAGES / "clip-manifest.csv", ["path", "label", "variant"],
               [(path, prompts[label], variant) for path, label, _, variant in rows])


# (text, true sentiment, domain, form); 8 per domain and form, 4 of each label.
SENTENCES = [
    ("A warm, funny film with a cast that clearly enjoyed every scene.", "positive", "film", "plain"),
    ("The ending moved me to tears and I have thought about it all week.", "positive", "film", "plain"),
    ("Sharp writing, gorgeous photography, and not a wasted minute.", "positive", "film", "plain"),
    ("I laughed from the opening scene to the credits.", "positive", "film", "plain"),
    ("The plot drags and the jokes land with a thud.", "negative", "film", "plain"),
    ("Two hours of wooden acting and a story that goes nowhere.", "negative", "film", "plain"),
    ("I checked my watch every ten minutes and regretted buying a ticket.", "negative", "film", "plain"),
    ("The dialogue is clumsy and the twist is obvious from the start.", "negative", "film", "plain"),
    ("Not a bad film at all; I enjoyed it more than I expected.", "positive", "film", "negated"),
    ("I never once felt bored during this movie.", "positive", "film", "negated"),
    ("The acting is never anything less than convincing.", "positive", "film", "negated"),
    ("I can't think of a single scene I would cut.", "positive", "film", "negated"),
    ("I would not call this film good by any measure.", "negative", "film", "negated"),
    ("The story never comes together, and the characters are not worth caring about.", "negative", "film", "negated"),
    ("This is not a movie I would recommend to anyone.", "negative", "film", "negated"),
    ("Nothing about the script feels fresh or clever.", "negative", "film", "negated"),
    ("The first half is slow, but the finale is brilliant and worth the wait.", "positive", "film", "mixed"),
    ("The effects look cheap, but the performances more than make up for it.", "positive", "film", "mixed"),
    ("It runs a little long, but I loved every character.", "positive", "film", "mixed"),
    ("I was skeptical going in, but it won me over completely.", "positive", "film", "mixed"),
    ("The trailer looked great, but the film itself is a tedious mess.", "negative", "film", "mixed"),
    ("The lead actor tries hard, but the script gives him nothing to work with.", "negative", "film", "mixed"),
    ("The music is lovely, but the story is dull and far too long.", "negative", "film", "mixed"),
    ("It starts with real promise, but the last hour falls apart.", "negative", "film", "mixed"),
    ("The pasta was fresh, the sauce was rich, and the staff were lovely.", "positive", "restaurant", "plain"),
    ("Best curry I have had in years, and the portions were generous.", "positive", "restaurant", "plain"),
    ("Friendly service, a cozy room, and a dessert I still dream about.", "positive", "restaurant", "plain"),
    ("Everything we ordered arrived hot and tasted wonderful.", "positive", "restaurant", "plain"),
    ("The soup was cold and the bread was stale.", "negative", "restaurant", "plain"),
    ("We waited an hour for a burnt pizza and a rude apology.", "negative", "restaurant", "plain"),
    ("The fish tasted old and the bill was outrageous.", "negative", "restaurant", "plain"),
    ("Greasy fries, a soggy salad, and a sticky table.", "negative", "restaurant", "plain"),
    ("Honestly, the steak could not have been better.", "positive", "restaurant", "negated"),
    ("I have no complaints about the food or the service.", "positive", "restaurant", "negated"),
    ("Not one dish we tried was a letdown.", "positive", "restaurant", "negated"),
    ("You won't leave this place hungry or unhappy.", "positive", "restaurant", "negated"),
    ("The food was not good, and the service was not much better.", "negative", "restaurant", "negated"),
    ("I would not go back there even if the meal were free.", "negative", "restaurant", "negated"),
    ("None of the dishes tasted the way the menu described them.", "negative", "restaurant", "negated"),
    ("The waiter never came back to check on us.", "negative", "restaurant", "negated"),
    ("The place is noisy, but the food is excellent and I will be back.", "positive", "restaurant", "mixed"),
    ("It took a while to get a table, but the meal was worth every minute.", "positive", "restaurant", "mixed"),
    ("The menu is short, but every dish on it is superb.", "positive", "restaurant", "mixed"),
    ("Parking is a nightmare, but the tacos are the best in town.", "positive", "restaurant", "mixed"),
    ("The decor is beautiful, but the food was bland and overpriced.", "negative", "restaurant", "mixed"),
    ("Our server was charming, but the chicken was raw in the middle.", "negative", "restaurant", "mixed"),
    ("The starters were tasty, but the main course was a disaster.", "negative", "restaurant", "mixed"),
    ("The view is stunning, but I have never eaten a worse meal.", "negative", "restaurant", "mixed"),
    ("This kettle boils quickly and looks great on the counter.", "positive", "product", "plain"),
    ("The headphones are comfortable and the sound is crisp and clear.", "positive", "product", "plain"),
    ("Sturdy, easy to set up, and the battery lasts for days.", "positive", "product", "plain"),
    ("My new backpack is light, roomy, and very well made.", "positive", "product", "plain"),
    ("The charger stopped working after two days.", "negative", "product", "plain"),
    ("The zip broke the first time I used the bag.", "negative", "product", "plain"),
    ("Flimsy plastic, confusing instructions, and a terrible smell.", "negative", "product", "plain"),
    ("The screen scratches easily and the battery dies by lunchtime.", "negative", "product", "plain"),
    ("I have not had a single problem with this blender.", "positive", "product", "negated"),
    ("This vacuum is not noisy in the slightest.", "positive", "product", "negated"),
    ("I can't fault this lamp in any way.", "positive", "product", "negated"),
    ("No regrets at all about buying this drill.", "positive", "product", "negated"),
    ("I would not call this keyboard good value.", "negative", "product", "negated"),
    ("The printer does not work with my laptop, no matter what I try.", "negative", "product", "negated"),
    ("This is not worth half of what I paid for it.", "negative", "product", "negated"),
    ("The lid never closes properly, so my coffee goes cold.", "negative", "product", "negated"),
    ("The box arrived dented, but the mixer inside works perfectly.", "positive", "product", "mixed"),
    ("It is a bit pricey, but it is the best mouse I have owned.", "positive", "product", "mixed"),
    ("Setup took an hour, but the router has been flawless since.", "positive", "product", "mixed"),
    ("The color is darker than in the photo, but I love this jacket.", "positive", "product", "mixed"),
    ("It looks stylish, but the handle snapped within a week.", "negative", "product", "mixed"),
    ("Delivery was fast, but the speaker crackles at any volume.", "negative", "product", "mixed"),
    ("The price is tempting, but the shoes fell apart after a month.", "negative", "product", "mixed"),
    ("The camera takes decent photos, but the app is so buggy that I returned it.", "negative", "product", "mixed"),
]


def build_texts() -> None:
    counts = Counter((domain, form, label) for _, label, domain, form in SENTENCES)
    assert set(counts.values()) == {4} and len(counts) == 18, counts  # 3 domains x 3 forms x 2 labels
    assert len({text for text, *_ in SENTENCES}) == len(SENTENCES), "duplicate sentence"
    keys = ["text", "label", "domain", "form"]
    _write_csv(HERE / "sample-texts.csv", keys, SENTENCES)
    with (HERE / "sample-texts.jsonl").open("w", encoding="utf-8", newline="\n") as f:
        for row in SENTENCES:
            f.write(json.dumps(dict(zip(keys, row)), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    build_images()
    build_texts()
    print(f"wrote {len(PHOTOS) * len(VARIANTS)} images and {len(SENTENCES)} sentences under {HERE}")
