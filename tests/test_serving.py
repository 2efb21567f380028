"""The model service (Ray Serve) against the app's own process: the same records from the same task functions
(image, text and image-text models), callbacks that come back, work errors that stay themselves, cancelled
requests that stop in the replica, a killed replica that costs a retry, and the pages running on it. One local
Ray instance for the module, with the three deployments of serving/serve.yaml."""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import serving
import serving.ray_serve
import serving.tasks
import ui.resources
from conftest import ROOT, settled, shown
from explainers.inputs.targets import TargetError
from explainers.inside.image import gradcam_by_depth
from explainers.inside.clip import inside_clip
from explainers.inside.text import inside_text
from explainers.evaluation.text_sanity import with_text_sanity
from explainers.tasks.clip import ClipSettings, PromptError, explain_image_text
from explainers.tasks.image import ImageSettings, explain_image
from explainers.tasks.text import TextSettings, explain_text
from models.runtime import configure_torch
from models.text_models import DEFAULT_DESCRIPTIONS
from serving.ray_serve import RayServe

ray = pytest.importorskip("ray")
from ray import serve  # noqa: E402  (after the check above)

MODEL = "efficientnet-lite0"
SETTINGS = ImageSettings(ig_steps=16, faithfulness=True, faithfulness_steps=8)
METHODS = ("gradcam", "layercam", "integrated-gradients")
TEXT_MODEL, CLIP_MODEL = "minilm", "conse"  # the bundled ones, as offline names resolve


@pytest.fixture(scope="module")
def service():
    """A local Ray with the three deployments, as `serve run serving/serve.yaml` starts them (proxy off)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="serve",
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    serve.start(proxy_location="Disabled")
    from serving.deployment import app

    serve.run(app({"kind": "image", "preload": MODEL}), name="xai-image", route_prefix=None)
    for kind, name in (("text", TEXT_MODEL), ("clip", CLIP_MODEL)):  # half a CPU each, as in serve.yaml
        serve.run(app({"kind": kind, "preload": name, "num_cpus": 0.5}), name=f"xai-{kind}", route_prefix=None)
    yield RayServe("127.0.0.1:6379", give_up=90)
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="module")
def here(bundled):
    configure_torch()  # the replica's torch settings: the same sums in the same order
    return bundled


def off_the_event_loop(test):
    """Playwright's sync API (the session's browser, when browser tests ran first) keeps an asyncio loop running
    in the main thread, where Ray Serve's blocking handle calls refuse to run: the test body gets a thread of
    its own, as a page's request has in the app."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(test, *args, **kwargs).result()

    return run


def same(a, b) -> None:
    """Two records equal field by field, arrays exactly."""
    assert type(a) is type(b)
    if hasattr(a, "__dataclass_fields__"):
        for field in fields(a):
            same(getattr(a, field.name), getattr(b, field.name))
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            same(a[key], b[key])
    else:
        assert a == b


@off_the_event_loop
def test_a_served_model_describes_itself_as_the_loaded_one(service, here):
    card = service.describe("image", MODEL)
    assert card.info == here.info and card.labels == here.labels and card.layers == here.layers
    assert card.default_layer == here.default_layer
    assert card.input_size(300, 451) == here.input_size(300, 451) == (224, 337)


@off_the_event_loop
def test_the_service_gives_the_same_records_and_calls_back(service, here, chelsea):
    card = service.describe("image", MODEL)
    heard, partials = [], []
    served = serving.run(card, explain_image, chelsea, METHODS, None, SETTINGS,
                         progress=lambda *what: heard.append(what), partial=partials.append)
    local = explain_image(here, chelsea, METHODS, None, SETTINGS)
    same(served, local)
    assert served.explanations[0].faithfulness is not None
    assert heard[0][0].startswith("Predicting and computing the Grad-CAM")
    assert any("gradient steps" in what for what, _, _ in heard)
    assert partials[0].pending == ("integrated-gradients",)  # the CAMs came before the slow map
    same(serving.run(card, gradcam_by_depth, chelsea, 285), gradcam_by_depth(here, chelsea, 285))


@off_the_event_loop
def test_a_work_error_comes_back_as_itself(service, chelsea):
    card = service.describe("image", MODEL)
    with pytest.raises(TargetError, match="no such class"):
        serving.run(card, explain_image, chelsea, ("gradcam",), "no such class")


@off_the_event_loop
def test_only_listed_tasks_run_in_the_service(service):
    card = service.describe("image", MODEL)
    with pytest.raises(ValueError, match="is not a task of the image service"):
        serving.run(card, print, "hello")


class Stop(Exception):
    pass


@off_the_event_loop
def test_a_cancelled_request_stops_in_the_replica(service, chelsea):
    """The caller's callback raises at the first step: the replica stops there and the model's line is free
    at once for the next request, which would otherwise wait behind 2048 more gradient steps."""
    card = service.describe("image", MODEL)
    long = ImageSettings(ig_steps=2048, ig_method="riemann_trapezoid")

    def progress(what, done, total):
        if done:
            raise Stop()

    with pytest.raises(Stop):
        serving.run(card, explain_image, chelsea, ("integrated-gradients",), None, long, progress=progress)
    places: list[int] = []
    from models.turns import listening

    with listening(lambda model, ahead: places.append(ahead)):
        after = serving.run(card, explain_image, chelsea, ("gradcam",))
    assert after.explanations[0].method == "gradcam"
    assert sum(1 for ahead in places if ahead) < 12  # at most ~3 s behind the stopped one (4 places a second)


@off_the_event_loop
def test_a_replica_killed_mid_request_costs_a_retry_not_a_wrong_result(service, here, coffee):
    card = service.describe("image", MODEL)
    notices, killed = [], threading.Event()

    def partial(report):
        if not killed.is_set():
            killed.set()
            (replica,) = [a for a in ray.util.list_named_actors(all_namespaces=True)
                          if a["name"].startswith("SERVE_REPLICA::xai-image")]
            ray.kill(ray.get_actor(replica["name"], namespace=replica["namespace"]), no_restart=False)

    served = serving.run(card, explain_image, coffee, METHODS, None, SETTINGS, partial=partial,
                         notice=notices.append)
    assert killed.is_set() and notices and "trying again" in notices[0]
    same(served, explain_image(here, coffee, METHODS, None, SETTINGS))


@pytest.fixture
def app_on_the_service(service, monkeypatch):
    """The app, its pages' models on the service, its own process able to load none; the cards forgotten after."""
    monkeypatch.setenv("XAI_BACKEND", "ray-serve")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    serving.backend.cache_clear()
    monkeypatch.setattr(serving, "_service", lambda: service)
    for kind in serving.tasks.LOADERS:
        monkeypatch.setitem(serving.tasks.LOADERS, kind, None)
    ui.resources._served.clear()
    ui.resources._served_variant.clear()
    try:
        app = AppTest.from_file(str(Path(ROOT) / "app.py"), default_timeout=120)
        app.run()
        yield app
    finally:
        serving.backend.cache_clear()
        ui.resources._served.clear()
        ui.resources._served_variant.clear()


def test_the_image_page_runs_on_the_service(app_on_the_service):
    app = app_on_the_service
    app.switch_page("app_pages/image/page.py").run()
    app.text_input(key="image_model").set_value(MODEL).run()
    app.multiselect(key="image_methods").set_value(["gradcam"])
    settled(app.button[0].click().run())
    assert not app.exception and not app.error
    assert isinstance(ui.resources.image_model(MODEL), serving.Remote)
    assert "EfficientNet-Lite0" in shown(app.caption)
    assert "Egyptian cat" in shown(app.markdown)
    assert len(app.get("plotly_chart")) >= 2  # predictions and the Grad-CAM


def test_a_batch_of_first_looks_equals_each_look_alone(here, chelsea, coffee, grace_hopper):
    """first_looks on a stack of photos (one forward and one backward pass) against first_look on each."""
    from explainers.tasks.image import first_look, first_looks
    import torch

    size = here.input_size(*chelsea.shape[:2])
    photos = [chelsea, np.ascontiguousarray(coffee[:300, :451]), np.ascontiguousarray(grace_hopper[:300, :451])]
    pixels = [here.preprocess(p) for p in photos]
    assert all(p.shape[-2:] == size for p in pixels)
    cams = ("gradcam", "gradcam++", "layercam")
    targets = [None, "espresso", 285]
    together = first_looks(here, torch.cat(pixels), here.default_layer, targets, cams)
    for (probabilities, index, grids), alone_pixels, target in zip(together, pixels, targets):
        p, i, g = first_look(here, alone_pixels, here.default_layer, target, cams)
        assert index == i
        np.testing.assert_allclose(probabilities, p, rtol=1e-4, atol=1e-6)
        for method in cams:
            np.testing.assert_allclose(grids[method], g[method], rtol=1e-3, atol=1e-5 * float(g[method].abs().max()))
    assert together[1][1] == 967  # espresso, as asked
    assert together[0][1] == int(together[0][0].argmax())  # no target: the top class


@off_the_event_loop
def test_requests_arriving_together_run_their_first_look_as_one_batch(service, here, chelsea):
    """Four students' Grad-CAM requests at once: the replica runs batches of more than one, and each student
    gets the map of their own photo (flipped, shifted, darker: four different ones of one size)."""
    card = service.describe("image", MODEL)
    photos = [chelsea, chelsea[:, ::-1].copy(), np.roll(chelsea, 40, axis=1), (chelsea * 0.6).astype(np.uint8)]
    handle = serve.get_deployment_handle("image", app_name="xai-image")
    before = handle.batches.remote().result()
    results: list = [None] * len(photos)
    start = threading.Barrier(len(photos))

    def student(i):
        start.wait()
        results[i] = serving.run(card, explain_image, photos[i], ("gradcam",))

    threads = [threading.Thread(target=student, args=(i,)) for i in range(len(photos))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sizes = handle.batches.remote().result()[len(before):]
    assert sum(sizes) == len(photos) and max(sizes) > 1
    for photo, served in zip(photos, results):
        alone = explain_image(here, photo, ("gradcam",))
        assert served.target.index == alone.target.index
        a, b = served.explanations[0].scores, alone.explanations[0].scores
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5 * float(np.abs(b).max()))


@off_the_event_loop
def test_the_text_service_gives_the_same_records_for_a_zero_shot_variant(service, minilm_encoder):
    """The encoder's card names no labels; its classifier for a set of descriptions is made in the replica and
    gives the records the same classifier gives here, sanity check and the inside view included."""
    configure_torch()
    encoder = service.describe("text", TEXT_MODEL)
    assert encoder.zero_shot and encoder.info == minilm_encoder.info and encoder.how == minilm_encoder.how
    descriptions = (*DEFAULT_DESCRIPTIONS, ("neutral", "This review is neither good nor bad."))
    card = serving.variant(encoder, descriptions)
    local = minilm_encoder.classifier(descriptions)
    assert card.name == (TEXT_MODEL, descriptions) and not card.zero_shot
    assert card.labels == local.labels == ("negative", "positive", "neutral") and card.identity == local.identity
    text = "The plot was dull but the acting was excellent."
    methods = ("integrated-gradients", "occlusion", "attention", "rollout")
    settings = TextSettings(ig_steps=16, faithfulness=True, faithfulness_steps=6)
    heard = []
    served = serving.run(card, explain_text, text, methods, None, settings, progress=lambda *w: heard.append(w))
    same(served, explain_text(local, text, methods, None, settings))
    assert served.attribution is not None and served.attribution.faithfulness is not None
    assert any(what.startswith("Integrated Gradients") for what, _, _ in heard)
    same(serving.run(card, with_text_sanity, served, settings), with_text_sanity(local, served, settings))
    same(serving.run(card, inside_text, text), inside_text(local, text))


@off_the_event_loop
def test_the_image_text_service_gives_the_same_records(service, conse, chelsea, coffee):
    configure_torch()
    card = service.describe("clip", CLIP_MODEL)
    assert card.info == conse.info and card.layers == conse.layers and card.has_attention == conse.has_attention
    prompts = ("a photo of a cat", "a cup of coffee")
    settings = ClipSettings(ig_steps=16, faithfulness=True, faithfulness_steps=6)
    methods = ("gradcam", "text-integrated-gradients")
    served = serving.run(card, explain_image_text, [chelsea, coffee], prompts, methods, None, settings,
                         every_prompt=True)
    same(served, explain_image_text(conse, [chelsea, coffee], prompts, methods, None, settings, every_prompt=True))
    assert served.maps and served.maps[0].faithfulness is not None
    same(serving.run(card, inside_clip, [chelsea], prompts, ["cat"]), inside_clip(conse, [chelsea], prompts, ["cat"]))
    with pytest.raises(PromptError):
        serving.run(card, explain_image_text, [chelsea], ("",), ())


def test_the_text_and_image_text_pages_run_on_the_service(app_on_the_service):
    """Both pages with the app's process holding no model: a zero-shot label set of the class's own, explained."""
    app = app_on_the_service
    app.switch_page("app_pages/text/page.py").run()
    app.text_input(key="text_model").set_value(TEXT_MODEL).run()
    assert not app.exception and not app.error
    app.multiselect(key="text_methods").set_value(["integrated-gradients"])
    app.text_area(key="text_input").set_value("What a wonderful, moving film.")
    settled(app.button[0].click().run())
    assert not app.exception and not app.error
    assert isinstance(ui.resources.text_model(TEXT_MODEL), serving.Remote)
    assert "MiniLM" in shown(app.caption)
    assert "positive" in shown(app.markdown)
    assert len(app.get("plotly_chart")) >= 2  # predictions and the token attributions

    app.switch_page("app_pages/clip/page.py").run()
    app.text_input(key="clip_model").set_value(CLIP_MODEL).run()
    assert not app.exception and not app.error
    app.multiselect(key="clip_samples").set_value(["Cat (Chelsea)"]).run()
    app.multiselect(key="clip_methods").set_value(["gradcam"])
    app.text_area(key="clip_prompts").set_value("cat\ncoffee")
    app.text_input(key="clip_template").set_value("a photo of a {}")
    settled(app.button[0].click().run())
    assert not app.exception and not app.error
    assert isinstance(ui.resources.image_text_model(CLIP_MODEL), serving.Remote)
    assert app.selectbox(key="clip_target").value == 0  # the best match: "a photo of a cat"
    assert len(app.get("plotly_chart")) >= 2
