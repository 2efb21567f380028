"""The work a model service may run: per kind of model, how to load it by name, how to describe it to a page,
and the task functions its pages call. A replica runs nothing that is not listed here."""

from __future__ import annotations

from explainers.evaluation.sanity import with_sanity
from explainers.inside.image import gradcam_by_depth, inside_image
from explainers.tasks.image import explain_image, first_looks
from models.image_models import load_image_classifier

from .cards import image_card

LOADERS = {"image": load_image_classifier}
TASKS = {"image": (image_card, explain_image, with_sanity, inside_image, gradcam_by_depth)}
DESCRIBE = {"image": image_card}
# Tasks whose first model call the replica batches across requests: the keyword it passes and the batch function
# (same-size inputs of one model stacked into one forward and backward pass).
BATCHED = {explain_image: ("look", first_looks)}
