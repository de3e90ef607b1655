"""Inputs of a handle: a batch checked once, token ids, display strings, prompts.

``InputsMixin`` is part of every backend (``_handle_base``); tokens are read through the
handle's ``vocab`` (toy models) or its tokenizer (Hugging Face models).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from jaxtyping import Float

from explorer._checks import check_tensor, check_text
from explorer.models._padding import (
    PaddedRows,
    last_positions,
    pad_rows,
    read_mapping,
    unmasked_padding_error,
)

__all__ = ["InputsMixin", "is_text"]

_REMEMBERED = 8  # checked input batches a handle recognises (see ``check_inputs``)


class InputsMixin:
    """Input and token methods of ``ModelHandle``."""

    model: Any
    cfg: Any
    vocab: tuple[str, ...] | None
    tokenizer: Any | None
    name: str
    kind: str
    prepend_bos: bool
    _token_strings: tuple[str, ...] | None
    _checked: list[tuple[weakref.ref[torch.Tensor], int]]
    _padded: PaddedRows
    input_shape: tuple[int, ...] | None
    is_transformer: bool
    n_ctx: int | None
    d_vocab: int | None
    image_shape: tuple[int, ...] | None

    def check_inputs(self, inputs: Any) -> torch.Tensor:
        """Validate a batch: token ids [batch, pos] (or text, see ``to_tokens``; or a
        tokenizer's ``{"input_ids", "attention_mask"}``) or images [batch, *input_shape].

        Check once at the edge: a batch this returned (unchanged since) is not checked again
        when it is run (``run_with_hooks``, ``cache_pass``), so analyses pass it down.

        >>> from explorer.models import zoo
        >>> m = zoo.attention_only_transformer(n_layers=1, d_vocab=10, n_ctx=8)
        >>> tokens = m.check_inputs(torch.tensor([[1, 2, 3]]))
        >>> m.check_inputs(tokens) is tokens
        True
        """
        if isinstance(inputs, torch.Tensor) and self._is_checked(inputs):
            return inputs
        checked = self._check_inputs(inputs)
        self._checked = [(r, v) for r, v in self._checked[-_REMEMBERED + 1 :] if r() is not None]
        self._checked.append((weakref.ref(checked), checked._version))
        return checked

    def _is_checked(self, inputs: torch.Tensor) -> bool:
        return any(r() is inputs and v == inputs._version for r, v in self._checked)

    def _check_inputs(self, inputs: Any) -> torch.Tensor:
        if self.is_transformer:
            mask = None
            if is_text(inputs):
                inputs = self.to_tokens(inputs)
            elif isinstance(inputs, Mapping):
                inputs, mask = read_mapping(inputs)
            tokens = check_tensor("tokens", inputs, ndim=(1, 2), integer=True)
            if tokens.dtype == torch.bool:
                raise TypeError(
                    "tokens must be integer token ids, got a bool tensor (a mask?): "
                    "convert ids with tokens.long()"
                )
            if tokens.dtype != torch.long:  # uint8/int32 ids index the embedding as int64
                tokens = tokens.long()
            if tokens.ndim == 1:
                tokens = tokens.unsqueeze(0)
            n_ctx, d_vocab = self.n_ctx or 0, self.d_vocab or 0
            if tokens.shape[1] > n_ctx:
                raise ValueError(
                    f"sequence length {tokens.shape[1]} exceeds the context of {self.name} (n_ctx {n_ctx})"
                )
            lo, hi = int(tokens.min()), int(tokens.max())
            if lo < 0 or hi >= d_vocab:
                raise ValueError(f"token ids must lie in 0..{d_vocab - 1}, got range {lo}..{hi}")
            if mask is not None:
                self._check_padding_side(mask)
                self._padded.remember(tokens, mask)
            self._refuse_unmasked_padding(tokens)
            return tokens
        images = check_tensor("images", inputs, integer=False)
        shape = tuple(images.shape[1:])
        if self.input_shape is not None and shape != self.input_shape:
            if tuple(images.shape) in (self.input_shape, self.image_shape):
                return self.to_inputs(images.unsqueeze(0))
            if self.image_shape is not None and shape == self.image_shape:
                return self.to_inputs(images)  # an image for a model that takes it flat
            raise ValueError(f"images must have shape {self._accepted()}, got {list(images.shape)}")
        return images

    def _accepted(self) -> str:
        shapes = [s for s in (self.input_shape, self.image_shape) if s is not None]
        return " or ".join(f"[batch, {', '.join(map(str, s))}]" for s in dict.fromkeys(shapes))

    def to_inputs(
        self, images: Float[torch.Tensor, "batch c h w"]
    ) -> Float[torch.Tensor, "batch ..."]:
        """Images ``[batch, *image_shape]`` as the model takes them (``[batch, *input_shape]``:
        flattened for a model whose first layer reads flat pixels); differentiable."""
        if self.input_shape is None or self.image_shape == self.input_shape:
            return images
        return images.reshape(images.shape[0], *self.input_shape)

    def check_images(self, inputs: Any) -> Float[torch.Tensor, "batch c h w"]:
        """A batch as images ``[batch, *image_shape]`` (inputs of the model's own shape,
        flat ones too, are reshaped): what attribution maps, feature visualisation, weight
        images and audits work on."""
        if self.is_transformer:
            raise ValueError(f"{self.name} takes tokens, not images")
        if self.image_shape is None:
            took = f"inputs of shape {list(self.input_shape)}" if self.input_shape else "inputs"
            raise ValueError(
                f"{self.name} takes {took} that explorer cannot show as images: pass "
                "image_shape=(channels, height, width) to explorer.load"
            )
        inputs = check_tensor("images", inputs, integer=False)
        if self.input_shape is None and tuple(inputs.shape[1:]) != self.image_shape:
            if tuple(inputs.shape) == self.image_shape:
                return inputs.unsqueeze(0)
            raise ValueError(f"images must have shape {self._accepted()}, got {list(inputs.shape)}")
        inputs = self.check_inputs(inputs)
        return inputs.reshape(inputs.shape[0], *self.image_shape)

    def to_str_tokens(self, tokens: torch.Tensor | Sequence[int]) -> list[str]:
        """Display strings of a 1-D token sequence (names from the vocab or tokenizer)."""
        if not self.is_transformer:
            raise ValueError(f"{self.name} takes images, not tokens")
        ids = torch.as_tensor(tokens).flatten().tolist()
        if self.vocab is not None:
            return [self.vocab[i] if 0 <= i < len(self.vocab) else f"<{i}>" for i in ids]
        tokenizer = self.tokenizer or getattr(self.model, "tokenizer", None)
        if tokenizer is not None:
            return [tokenizer.decode([i]) for i in ids]
        return [str(i) for i in ids]

    def to_single_token(self, text: str) -> int:
        """The id of a token written as text (``" Mary"``: from the vocab, else the tokenizer);
        the text must be exactly one token."""
        if not isinstance(text, str):
            raise TypeError(f"a token is written as a string, got {type(text).__name__}")
        if self.vocab is not None:
            if text in self.vocab:
                return self.vocab.index(text)
            raise ValueError(
                f"{text!r} is not in the vocabulary of {self.name} (e.g. {list(self.vocab[:5])})"
            )
        tokenizer = self._need_tokenizer(f"the token {text!r}")
        check_text("token", [text])
        ids = tokenizer.encode(text, add_special_tokens=False)
        if len(ids) != 1:
            pieces = [tokenizer.decode([i]) for i in ids]
            raise ValueError(
                f"{text!r} is {len(ids)} tokens for {self.name}, not one: {ids} ({pieces})"
            )
        return int(ids[0])

    def token_strings(self) -> tuple[str, ...]:
        """The display string of every output token id (decoded once, then kept)."""
        if self._token_strings is None:
            self._token_strings = tuple(self.to_str_tokens(torch.arange(self.n_outputs or 0)))
        return self._token_strings

    def to_tokens(
        self, text: str | Sequence[str], *, padding_side: str | None = None
    ) -> torch.Tensor:
        """Token ids ``[batch, pos]`` of a prompt or a list of prompts.

        The model's tokenizer decides; with ``prepend_bos`` (transformer-lens's default for
        the family: GPT-2, Llama, Mistral, Gemma yes; GPT-NeoX, Qwen2 no) a BOS token is put
        first when the tokenizer has one and did not add it itself. Prompts of unequal token
        length are padded (``padding_side``: decoders ``"left"`` by default, so position -1
        is every prompt's last token; encoders ``"right"``) and the handle keeps their
        attention mask: every pass of these rows masks the pads (``attention_mask``).
        """
        tokenizer = self._need_tokenizer("text prompts")
        prompts = [text] if isinstance(text, str) else list(text)
        if not prompts or not is_text(prompts):
            raise TypeError("text must be a string or a non-empty list of strings")
        check_text("prompt", prompts)  # before the tokenizer's own TypeError
        rows = [list(tokenizer(p)["input_ids"]) for p in prompts]
        bos = getattr(tokenizer, "bos_token_id", None)
        causal = self._causal
        if self.prepend_bos and bos is not None and causal:
            rows = [r if r[:1] == [bos] else [bos, *r] for r in rows]
        side = padding_side or ("left" if causal else "right")
        if len({len(r) for r in rows}) == 1:
            if side not in ("left", "right"):
                raise ValueError(f"padding_side must be 'left' or 'right', got {side!r}")
            return torch.tensor(rows, dtype=torch.long)
        if side == "left" and not causal:
            raise ValueError(
                f"{self.name} is an encoder with learned absolute positions: its prompts are "
                "padded on the right (padding_side='right')"
            )
        tokens, mask = pad_rows(rows, self._pad_fill(tokenizer), side)
        self._padded.remember(tokens, mask)
        return tokens

    def attention_mask(self, tokens: torch.Tensor) -> torch.Tensor | None:
        """The attention mask ``[batch, pos]`` (1 = a real token) of a batch this handle
        padded (``to_tokens`` of unequal prompts, or a batch given with its mask), found
        row by row wherever the rows went; None when no row is padded."""
        if not self.is_transformer or not self._padded:
            return None
        return self._padded.mask_of(tokens)

    def last_positions(self, tokens: Any) -> torch.Tensor:
        """Each prompt's last real token ``[batch]``: what a metric's ``position=`` takes for
        a right-padded batch (left-padded and unpadded batches end at position -1).

        >>> from explorer.models import zoo
        >>> m = zoo.attention_only_transformer(n_layers=1, d_vocab=10, n_ctx=8)
        >>> m.last_positions(torch.tensor([[1, 2, 3]])).tolist()
        [2]
        """
        tokens = self.check_inputs(tokens)
        mask = self.attention_mask(tokens)
        if mask is None:
            return torch.full((tokens.shape[0],), tokens.shape[1] - 1, dtype=torch.long)
        return last_positions(mask)

    def token_positions(self, tokens: Any, token: str | int) -> torch.Tensor:
        """Where each prompt holds ``token`` ``[batch]`` (a token string, read with the
        tokenizer, or an id; its last occurrence): a metric's ``position=`` for a named
        token, such as BERT's ``"[MASK]"``.

        >>> from explorer.models import zoo
        >>> m = zoo.attention_only_transformer(n_layers=1, d_vocab=10, n_ctx=8)
        >>> m.token_positions(torch.tensor([[1, 7, 3], [7, 2, 2]]), 7).tolist()
        [1, 0]
        """
        tokens = self.check_inputs(tokens)
        token_id = token if isinstance(token, int) else self.to_single_token(token)
        found = tokens == token_id
        missing = (~found.any(-1)).nonzero()[:, 0].tolist()
        if missing:
            raise ValueError(f"rows {missing[:8]} do not hold the token {token!r} (id {token_id})")
        n = tokens.shape[1]
        return (n - 1 - found.long().flip(-1).argmax(-1)).long()

    @property
    def _causal(self) -> bool:
        return getattr(self.cfg, "attention_dir", "causal") == "causal"

    def _pad_fill(self, tokenizer: Any) -> int:
        for attr in ("pad_token_id", "eos_token_id", "bos_token_id"):
            value = getattr(tokenizer, attr, None)
            if value is not None:
                return int(value)
        return 0

    def _pad_id(self) -> int | None:
        """The tokenizer's pad id when it is no other special token (GPT-2 pads with its
        end-of-text token, a real token: then no id batch can be told to be padded)."""
        tokenizer = self.tokenizer or getattr(self.model, "tokenizer", None)
        pad = getattr(tokenizer, "pad_token_id", None)
        others = {getattr(tokenizer, a, None) for a in ("bos_token_id", "eos_token_id")}
        return None if pad is None or pad in others else int(pad)

    def _refuse_unmasked_padding(self, tokens: torch.Tensor) -> None:
        pad = self._pad_id()
        if pad is None:
            return
        rows = (tokens == pad).any(-1)
        if not bool(rows.any()):
            return
        mask = self.attention_mask(tokens)
        if mask is not None:
            rows &= (mask == 1).all(-1)  # rows with their own mask are fine
        if bool(rows.any()):
            raise unmasked_padding_error(self.name, pad, rows.nonzero()[:, 0].tolist())

    def _check_padding_side(self, mask: torch.Tensor) -> None:
        if self._causal:
            return
        right = bool((mask[:, 1:] <= mask[:, :-1]).all())
        if not right:
            raise ValueError(
                f"{self.name} is an encoder with learned absolute positions: pad its prompts "
                "on the right (the tokenizer's padding_side='right'), not the left"
            )

    def _need_tokenizer(self, what: str) -> Any:
        if not self.is_transformer:
            raise ValueError(f"{self.name} takes images, not {what}")
        tokenizer = self.tokenizer or getattr(self.model, "tokenizer", None)
        if tokenizer is None:
            raise ValueError(
                f"{self.name} has no tokenizer, so {what} cannot be read: give token ids, "
                "or load a Hugging Face folder holding tokenizer.json"
            )
        return tokenizer


def is_text(inputs: Any) -> bool:
    if isinstance(inputs, str):
        return True
    return (
        isinstance(inputs, (list, tuple))
        and bool(inputs)
        and all(isinstance(x, str) for x in inputs)
    )
