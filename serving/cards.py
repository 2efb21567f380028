"""What a page needs to know about a model that runs elsewhere: its name, classes and layers, no weights."""

from __future__ import annotations

from dataclasses import dataclass

from models.image_classifier import ImageClassifier, InputPolicy, input_size
from models.info import ModelInfo


@dataclass(frozen=True)
class ImageCard:
    info: ModelInfo
    labels: tuple[str, ...]
    layers: tuple[str, ...]
    policy: InputPolicy

    @property
    def default_layer(self) -> str | None:
        return self.layers[-1] if self.layers else None

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        return input_size(self.policy, height, width)


def image_card(classifier: ImageClassifier) -> ImageCard:
    return ImageCard(classifier.info, classifier.labels, classifier.layers, classifier.policy)


@dataclass(frozen=True)
class TextCard:
    """A text classifier, or a zero-shot encoder (no labels of its own: its classifiers are variants)."""

    info: ModelInfo
    how: str
    zero_shot: bool
    labels: tuple[str, ...]
    identity: str


def text_card(model) -> TextCard:
    if model.zero_shot:
        return TextCard(model.info, model.how, True, (), "")
    return TextCard(model.info, model.how, False, model.labels, model.identity)


@dataclass(frozen=True)
class ClipCard:
    info: ModelInfo
    how: str
    layers: tuple[str, ...]
    has_attention: bool


def clip_card(model) -> ClipCard:
    return ClipCard(model.info, model.how, tuple(model.layers), model.has_attention)


@dataclass(frozen=True)
class Remote:
    """A model served by the model service: `kind` and the `name` asked for route the work, `card` answers the
    page's questions (labels, layers, info, input size) as the loaded model would. A name may be a pair (model
    name, variant): the model's classifier for the variant (a zero-shot encoder's label descriptions)."""

    kind: str
    name: str | tuple
    card: object

    def __getattr__(self, attribute: str):
        if attribute == "card":  # not set yet (while unpickling): no recursion
            raise AttributeError(attribute)
        return getattr(self.card, attribute)
