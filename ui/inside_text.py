"""The text page's "Inside the model" section: tokenisation, one head's attention step by step and the
layers, for the text the page explained. One forward pass per text (kept for the session); choosing a
layer, a head or a token redraws from the stored states and the layers' weights without a model call."""

from __future__ import annotations

import streamlit as st

import serving
from serving import ServiceError

from explainers.figures.inside_text import drawn_keys, head_map_figure, layers_figure, paths_figure, readout_figure, steps_figure
from explainers.inside.text import inside_text, token_paths
from explainers.records.inside_text import InsideText

from .kept import kept
from .markdown import plain
from .presenter import plot, presenting

SHOWN_DIMENSIONS = 8  # of a head's query, key and value vectors, in the numbers


def show_inside(classifier, text: str) -> None:
    st.header("Inside the model")
    if not st.toggle("Show the network itself: tokens, attention step by step, the layers", key="text_inside",
                     persist_state="session"):
        return
    try:
        record = kept("text_inside_record", (classifier.identity, text),
                      lambda: serving.run(classifier, inside_text, text), "Reading the network…")
    except (ValueError, ServiceError) as error:  # an empty text (TextInputError), a network without layer states,
        # or the model service is down: a sentence, and the rest of the page works
        st.error(plain(error))
        return
    tokens, attention, layers = st.tabs(["Tokenisation", "Attention step by step", "Through the layers"])
    with tokens:
        _tokenisation(record)
    with attention:
        _attention(record)
    with layers:
        _layers(record)


def _tokenisation(record: InsideText) -> None:
    st.caption(f"The tokenizer cut the text into {len(record.tokens)} word pieces; “##” marks a piece that continues "
               "a word. [CLS] and [SEP] are added by the tokenizer: every layer reads them like any other token.")
    rows = [{"position": i, "piece": t, "id": i_d, "special": "yes" if s else ""}
            for i, (t, i_d, s) in enumerate(zip(record.tokens, record.ids, record.special))]
    st.dataframe(rows, hide_index=True, width="stretch", height=min(420, 38 + 35 * len(rows)))
    if record.cut_at is not None:
        st.warning(f"The text needs {record.total_tokens} tokens; the model reads {record.max_tokens}, so everything "
                   f"after character {record.cut_at} was cut.", icon="✂️")


def _token_name(record: InsideText, j: int) -> str:
    return f"#{j} {record.tokens[j]}"


def _attention(record: InsideText) -> None:
    if record.projections is None:
        st.info(f"{plain(record.model.name)}'s attention cannot be taken apart into queries, keys and values; the "
                "attention maps on the page are still the model's own.")
        return
    left, middle, right = st.columns(3)
    layer = left.selectbox("Layer", range(record.layers), index=record.layers - 1, format_func=lambda i: f"layer {i + 1}",
                           key="text_inside_layer")
    head = middle.selectbox("Head", range(record.heads), format_func=lambda i: f"head {i + 1}", key="text_inside_head")
    token = right.selectbox("Query token", range(len(record.tokens)), index=record.default_token(),
                            format_func=lambda j: _token_name(record, j), key="text_inside_token",
                            help="The token whose new representation is being built. The classifier reads "
                                 + ("[CLS]." if record.pooling == "cls" else "the average of every token."))
    step = record.step_by_step(layer, head, token)
    d = step.query.shape[0]
    st.markdown(
        f"**1. Query.** Token #{token} ({plain(record.tokens[token])}) asks with its query vector q "
        f"({d} numbers, from this layer's query projection of its state). **2. Keys.** Every token offers a key k. "
        f"**3. Scores.** q·k / √{d} says how well each key answers. **4. Softmax** turns the scores into weights "
        "that add up to 1. **5. Values.** The output is the weighted sum of the tokens' value vectors.")
    plot(steps_figure(record, step), key="text_inside_steps")
    keys = drawn_keys(step)
    if len(keys) < len(step.weights):
        st.caption(f"The text has {len(step.weights)} tokens: the bars and the table show the {len(keys)} keys this "
                   "token attends to most; the map below has them all, and the weights shown still add up over all.")
    if not presenting():
        _numbers(record, step, keys)
    plot(head_map_figure(record, layer, head, token), key="text_inside_map")


def _numbers(record: InsideText, step, keys: list[int]) -> None:
    shown = min(SHOWN_DIMENSIONS, step.query.shape[0])

    def vector(v) -> str:
        more = "" if len(v) <= shown else ", …"
        return "[" + ", ".join(f"{x:+.2f}" for x in v[:shown]) + more + "]"

    st.markdown(f"q = `{vector(step.query)}` (first {shown} of {step.query.shape[0]} numbers)")
    rows = [{"key token": _token_name(record, j), "k (first numbers)": vector(step.keys[j]),
             "q·k": round(float(step.query @ step.keys[j]), 4), "score = q·k/√d": round(float(step.scores[j]), 4),
             "weight": round(float(step.weights[j]), 4), "v (first numbers)": vector(step.values[j])} for j in keys]
    st.dataframe(rows, hide_index=True, width="stretch")
    st.markdown(f"output = Σ weight × v = `{vector(step.output)}`: this head's contribution, which the layer mixes "
                "with the other heads' before adding it to the token's state.")


def _layers(record: InsideText) -> None:
    if record.readout is not None:
        plot(readout_figure(record), key="text_inside_readout")
        label = record.labels[int(record.readout[-1].argmax())]
        where = "the embeddings" if record.settles_at == 0 else f"layer {record.settles_at}"
        st.markdown(f"The prediction **{plain(label)}** settles at **{where}**: from there on, every layer's readout "
                    "already gives it.")
    st.caption(plain(record.readout_note))
    plot(layers_figure(record), key="text_inside_similarity")
    chosen = st.multiselect("Tokens to follow", range(len(record.tokens)), default=[],
                            format_func=lambda j: _token_name(record, j), key="text_inside_paths",
                            help="Their states at every layer on two principal components of all the states.")
    if not chosen:
        st.caption("Choose tokens to follow their path through the layers (a projection of the states the page "
                   "already has: no model call).")
        return
    paths = kept("text_inside_paths_record", (record.model.name, record.model.source, record.text),
                 lambda: token_paths(record), "Projecting the states…")
    plot(paths_figure(record, paths, list(chosen)), key="text_inside_path_figure")


