"""Everything that changes an audit's numbers, and the id that ties a results file to it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

DEFAULT_METHODS = {"image": ("gradcam",), "text": ("integrated-gradients",), "clip": ("gradcam",)}
FAITHFUL_METHODS = {
    "image": ("gradcam", "gradcam++", "layercam", "integrated-gradients", "smoothgrad", "lime", "kernelshap", "occlusion"),
    "text": ("integrated-gradients", "lime", "kernelshap", "occlusion"),
    "clip": ("gradcam", "relevancy"),
}
ENGINES = ("local", "ray")
DEFAULT_SAMPLE = 16
DEFAULT_SANITY_ITEMS = 2
BATCH_SIZE = 16
CAM_METHODS = ("gradcam", "gradcam++", "layercam")  # the maps --maps can save for every item (cheap, batched)


@dataclass(frozen=True)
class AuditConfig:
    task: str
    model: str | None = None  # as asked; the report names what answered
    methods: tuple[str, ...] = ()
    sample: int = DEFAULT_SAMPLE  # items (seeded) whose maps get deletion / insertion curves
    seed: int = 0
    faithfulness_steps: int = 20
    sanity_items: int = DEFAULT_SANITY_ITEMS  # items of the sample whose first map gets the sanity check
    prompts: tuple[str, ...] = ()  # image + text: the prompts are the classes
    template: str = ""  # image + text: "a photo of a {}" fills each prompt in
    batch_size: int = BATCH_SIZE
    maps: tuple[str, ...] = ()  # images: CAM-family maps saved for every item, at the layer's grid
    prompt_texts: tuple[str, ...] = field(default=(), compare=False)  # the prompts as the model reads them

    def as_dict(self) -> dict:
        values = asdict(self)
        values.pop("prompt_texts")
        values["methods"], values["prompts"], values["maps"] = list(self.methods), list(self.prompts), list(self.maps)
        return values


def audit_id(config: AuditConfig, dataset_sha256: str, model_identity: str) -> str:
    """Same config, data and model: same id. A results file written under another id is not resumed."""
    text = json.dumps([config.as_dict(), dataset_sha256, model_identity], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
