"""The work a model service may run: per kind of model, how to load it by name, how to describe it to a page,
and the task functions its pages call. A replica runs nothing that is not listed here."""

from __future__ import annotations

from explainers.evaluation.clip_sanity import with_clip_sanity
from explainers.evaluation.sanity import with_sanity
from explainers.evaluation.text_sanity import with_text_sanity
from explainers.inside.clip import inside_clip
from explainers.inside.image import gradcam_by_depth, inside_image
from explainers.inside.text import inside_text
from explainers.tasks.clip import explain_image_text
from explainers.tasks.image import explain_image, first_looks
from explainers.tasks.text import explain_text
from models.image_models import load_image_classifier
from models.image_text_models import load_image_text_model
from models.text_models import load_text_model

from .cards import clip_card, image_card, text_card

LOADERS = {"image": load_image_classifier, "text": load_text_model, "clip": load_image_text_model}
DESCRIBE = {"image": image_card, "text": text_card, "clip": clip_card}
TASKS = {
    "image": (image_card, explain_image, with_sanity, inside_image, gradcam_by_depth),
    "text": (text_card, explain_text, with_text_sanity, inside_text),
    "clip": (clip_card, explain_image_text, with_clip_sanity, inside_clip),
}
# Tasks whose first model call the replica batches across requests: the keyword it passes and the batch function
# (same-size inputs of one model stacked into one forward and backward pass).
BATCHED = {explain_image: ("look", first_looks)}
