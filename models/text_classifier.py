"""A text classifier adapter: tokenising, labels, and logits from word embeddings.

Explainers never touch the network directly. Integrated Gradients differentiates `logits_from`
with respect to word embeddings the explainer owns; attention comes back from one forward pass.
The network stays frozen and explanations attach nothing to it, so one object serves every
session. (transformers 5 adds its own inert, context-gated output-capturing hooks on the first
`output_attentions` / `output_hidden_states` call; a warm-up at construction makes that happen at load,
not mid-request.)

`with_random` makes a private copy with some parts re-initialised (the sanity check): the head, then
the encoder's layers from the top, then the embeddings, sharing everything else (models/randomise.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from .info import ModelInfo
from .randomise import Part, random_copy, randomised_after
from .turns import Turns

# (network output, attention mask) -> logits (batch, classes)
Head = Callable[[object, torch.Tensor], torch.Tensor]
# (one layer's hidden states (batch, T, D), attention mask) -> logits, as if that layer were the last
Readout = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# One layer's attention projections as read-only numpy views of its weights: (Wq, bq, Wk, bk, Wv, bv),
# each W (heads x head size, D) and b (heads x head size,).
Projections = tuple


@dataclass(frozen=True)
class Trace:
    """One forward pass seen from inside: what the "Inside the model" view draws."""

    logits: torch.Tensor  # (1, classes)
    attention: torch.Tensor  # (layers, heads, T, T)
    hidden: torch.Tensor  # (layers + 1, T, D): the embeddings' output, then each layer's
    readout: torch.Tensor | None  # (layers + 1, classes): the classifier read from each layer; None if it cannot be


@dataclass(frozen=True)
class Encoding:
    """One text as the model reads it."""

    ids: torch.Tensor  # (1, T) token ids, [CLS] ... [SEP]
    tokens: tuple[str, ...]  # word pieces as the tokenizer spells them
    special: tuple[bool, ...]  # [CLS], [SEP] and the like
    words: tuple[int | None, ...]  # which word of the text each token belongs to
    spans: tuple[tuple[int, int], ...]  # character span of each token in the text
    total_tokens: int  # tokens the whole text needs, before truncation
    cut_at: int | None  # character where truncation cut the text, None when it fits


class TextClassifier:
    zero_shot = False  # a classifier with its own labels (a ZeroShotEncoder makes one per set of descriptions)

    def __init__(
        self,
        network: nn.Module,
        tokenizer,
        labels: Sequence[str],
        info: ModelInfo,
        head: Head,
        pooling: str,
        how: str,
        lock: Turns | None = None,
        variant: str = "",
        parts: Sequence[Part] = (),
        rebuild: Callable[[nn.Module], TextClassifier] | None = None,
        readout: Readout | None = None,
    ):
        self.network = network.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.labels = tuple(labels)
        self.info = info
        self._head = head
        self.pooling = pooling  # "cls" or "mean": which token positions the classifier reads
        self.how = how  # one sentence for the page: how this model turns text into a label
        # Everything that changes a result, for caches shared by sessions (zero-shot descriptions too).
        self.identity = f"{info.name}|{info.source}|{self.labels}|{variant}"
        config = network.config
        limit = min(getattr(tokenizer, "model_max_length", 512) or 512, config.max_position_embeddings)
        self.max_tokens = int(limit)
        self.layers = int(config.num_hidden_layers)
        self.heads = int(config.num_attention_heads)
        # One lock per network: Streamlit sessions share it across threads. The fast tokenizer
        # keeps truncation settings as state, so tokenising happens under it too.
        self.lock = lock or Turns(info.name)
        # Top-down (head first); `rebuild` makes an adapter like this one around a copy of `network`.
        self._parts = list(parts)
        self._rebuild = rebuild
        self.randomised: tuple[str, ...] = ()
        self._readout = readout
        self._projections: tuple | None = None  # see projections()
        with self.lock:
            ids = self.encode("warm up").ids
            self.attend(ids)
            # trace() asks for hidden states too: transformers installs its capturing hooks now, not mid-request.
            # A readout is trusted only if, read from the last layer, it gives the model's own logits.
            try:
                warm = self.trace(ids)
            except TypeError:  # a network whose forward takes no output_hidden_states (a hand-built one)
                warm = None
            self.traceable = warm is not None  # whether the "Inside the model" view can read its layers
            if warm is None or warm.readout is None:
                self._readout = None

    @property
    def reads_every_layer(self) -> bool:
        """Whether the classifier can be read from any layer's states (the "where it settles" view)."""
        return self._readout is not None

    @property
    def rebuildable(self) -> bool:
        return self._rebuild is not None

    def randomisable_parts(self) -> tuple[Part, ...]:
        """The parts `with_random` can re-initialise, top-down; empty if this adapter cannot rebuild itself."""
        return tuple(self._parts) if self.rebuildable else ()

    def with_random(self, names: Sequence[str], seed: int = 0) -> TextClassifier:
        """A private copy (its own lock) with the named parts re-initialised; this classifier is only read."""
        if not self.randomisable_parts():
            why = "it names no parts" if self.rebuildable else "its adapter cannot rebuild itself around a copy"
            raise ValueError(f"{self.info.name} cannot be copied with random weights: {why}")
        with self.lock:
            twin = self._rebuild(random_copy(self.network, self.randomisable_parts(), names, seed))
        twin.randomised = randomised_after(self.randomisable_parts(), self.randomised, names)
        twin.info = replace(self.info, note=f"weights re-initialised: {' + '.join(twin.randomised)}")
        return twin

    def encode(self, text: str) -> Encoding:
        # split_special_tokens: a user typing "[CLS]" means the characters, not the control token.
        kwargs = dict(split_special_tokens=True, return_offsets_mapping=True)
        with self.lock:
            full = self.tokenizer(text, add_special_tokens=False, **kwargs)
            batch = self.tokenizer(
                text, truncation=True, max_length=self.max_tokens, return_tensors="pt",
                return_special_tokens_mask=True, **kwargs,
            )
        ids = batch["input_ids"]
        # The tokenizer's own mask: [CLS] and [SEP] it added, not [UNK] (an emoji is still text).
        special = tuple(bool(s) for s in batch["special_tokens_mask"][0].tolist())
        spans = tuple((int(a), int(b)) for a, b in batch["offset_mapping"][0].tolist())
        kept = sum(not s for s in special)
        total = len(full["input_ids"])
        cut_at = None
        if kept < total:
            cut_at = max(end for (start, end), s in zip(spans, special) if not s)
        return Encoding(
            ids=ids,
            tokens=tuple(self.tokenizer.convert_ids_to_tokens(ids[0].tolist())),
            special=special,
            words=tuple(batch.word_ids(0)),
            spans=spans,
            total_tokens=total + (len(special) - kept),
            cut_at=cut_at,
        )

    def word_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.network.get_input_embeddings()(ids).detach()

    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else 0)

    def logits_from(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Logits for word embeddings (batch, T, D) of one text; position and type embeddings are added inside."""
        mask = torch.ones(embeddings.shape[:2], dtype=torch.long)
        output = self.network(inputs_embeds=embeddings, attention_mask=mask)
        return self._head(output, mask)

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        return self.logits_from(self.word_embeddings(ids))

    def logits_batch(self, texts: Sequence[str]) -> torch.Tensor:
        """Logits (len(texts), classes) from one padded forward pass: many texts at once (an audit).
        Padding is masked out, so each row matches `logits` of that text alone up to rounding."""
        with self.lock:
            batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_tokens,
                                   return_tensors="pt", split_special_tokens=True)
            with torch.no_grad():
                output = self.network(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                return self._head(output, batch["attention_mask"])

    def attend(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and every attention map, (layers, heads, T, T), from one forward pass."""
        mask = torch.ones_like(ids)
        with torch.no_grad():
            output = self.network(input_ids=ids, attention_mask=mask, output_attentions=True)
            return self._head(output, mask), torch.stack([a[0] for a in output.attentions])

    def trace(self, ids: torch.Tensor) -> Trace:
        """Logits, every attention map and every layer's states, from one forward pass."""
        mask = torch.ones_like(ids)
        with torch.no_grad():
            output = self.network(input_ids=ids, attention_mask=mask, output_attentions=True, output_hidden_states=True)
            logits = self._head(output, mask)
            attention = torch.stack([a[0] for a in output.attentions])
            hidden = torch.stack([h[0] for h in output.hidden_states])
        return Trace(logits, attention, hidden, self._read_layers(hidden, mask, logits))

    def _read_layers(self, hidden: torch.Tensor, mask: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | None:
        if self._readout is None:
            return None
        try:
            readout = torch.cat([self._readout(h[None], mask) for h in hidden])
        except (RuntimeError, TypeError, ValueError, IndexError):  # a head that does not take states this way
            return None
        if readout.shape[-1] != logits.shape[-1] or not torch.allclose(readout[-1:], logits, atol=1e-4, rtol=1e-4):
            return None
        return readout

    def projections(self) -> tuple[Projections, ...] | None:
        """Every layer's query, key and value projections as read-only numpy views of the shared weights (no
        copy, nothing attached): with the states entering a layer (`trace().hidden[layer]`) they give that
        layer's queries, keys and values, so softmax(Q K^T / sqrt(d)) is its attention map, without running
        the network again. None when the architecture's attention is not laid out in a way we know."""
        if self._projections is None:
            layers = _encoder_layers(self.network)
            found = [_attention_linears(layer) for layer in layers] if layers is not None else [None]
            self._projections = () if any(f is None for f in found) else tuple(
                tuple(_read_only(t) for linear in linears for t in (linear.weight, linear.bias)) for linears in found)
        return self._projections or None


def _read_only(parameter: torch.Tensor):
    """A numpy view of a shared weight that refuses writes (the same memory: nothing is copied)."""
    view = parameter.detach().numpy()
    view.flags.writeable = False
    return view


def _attention_linears(layer: nn.Module) -> tuple[nn.Linear, nn.Linear, nn.Linear] | None:
    attention = getattr(layer, "attention", None)
    inner = getattr(attention, "self", attention)  # BERT, RoBERTa, MiniLM: .attention.self; DistilBERT: .attention
    for names in (("query", "key", "value"), ("q_lin", "k_lin", "v_lin")):
        linears = tuple(getattr(inner, name, None) for name in names)
        if all(isinstance(m, nn.Linear) and m.bias is not None for m in linears):
            return linears
    return None


def _encoder_layers(network: nn.Module) -> nn.ModuleList | None:
    base = getattr(network, "base_model", network)
    count = int(network.config.num_hidden_layers)
    return next((m for m in base.modules() if isinstance(m, nn.ModuleList) and len(m) == count), None)


def encoder_parts(network: nn.Module, with_head: bool = True) -> list[Part]:
    """A transformer's parts top-down: the head (what sits outside the encoder, and its pooler), each
    layer from the last, then the embeddings. `with_head` False for a bare encoder whose pooler is unused."""
    base = getattr(network, "base_model", network)
    count = int(network.config.num_hidden_layers)
    stacks = [m for m in base.modules() if isinstance(m, nn.ModuleList) and len(m) == count]
    if not stacks:
        return []
    parts: list[Part] = []
    if with_head:
        inside = {id(m) for m in base.modules()}
        outside = [m for m in network.children() if id(m) not in inside and any(True for _ in m.parameters())]
        pooler = getattr(base, "pooler", None)
        head = nn.ModuleList(([pooler] if pooler is not None else []) + outside)
        if any(True for _ in head.parameters()):
            parts.append(("head", head))
    parts += [(f"layer {i + 1}", stacks[0][i]) for i in reversed(range(count))]
    embeddings = getattr(base, "embeddings", None)
    if embeddings is not None:
        parts.append(("embeddings", embeddings))
    return parts
