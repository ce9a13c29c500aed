"""Pieces every scorer shares, computed once per forward output: softmax P, sigmoid σ(M) and S.

Notation (shared by every scorer docstring): ``C`` class logits ``(Q, K+1)`` with the void / no-object
column last (index ``K``); ``M`` mask logits ``(Q, H, W)``; ``P = softmax(C)`` over all ``K+1``
columns; ``σ`` the logistic sigmoid; ``S_k(x) = Σ_q P[q,k] σ(M_q(x))`` for the ``K`` known classes
(softmax first, void dropped after, as Mask2Former ``semantic_inference`` does; ``S`` is not a
distribution and ``Σ_k S_k`` may exceed 1).

A per-pixel scorer sees one chunk of pixels at a time through :class:`Pixels` (see
:mod:`maskbench.scorers._run`): on CPU the ``(Q, chunk)`` sigmoid block stays in cache while every scorer
reads it, which is what makes running all scorers together cost little more than the slowest one alone.
:class:`Queries` and :class:`Pixels` are public (exported by :mod:`maskbench.scorers`): the attributes
documented on them are the stable interface of a per-pixel plug-in.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from maskbench.errors import InputError

#: A prepared scorer: maps the pixel context of one chunk to the ``(n,)`` anomaly scores of that chunk.
ChunkScore = Callable[["Pixels"], torch.Tensor]

#: Pixels per chunk on CPU: a ``(100, 2**14)`` float32 sigmoid block is 6.5 MB (stays in L3).
CPU_CHUNK_PIXELS = 2**14
#: CPU chunks are padded to a multiple of this width, so that torch's element-wise kernels take their vectorised
#: path for every element (the scalar tail path may round differently by one ulp): a sigmoid gathered from the
#: shared σ(M) and one computed on gathered logit rows are then the same bits.
CPU_CHUNK_ALIGN = 64


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; float32 and the half types are computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def check_inputs(class_logits, mask_logits) -> None:
    """Reject anything but ``class_logits (Q, K+1)`` (finite) and ``mask_logits (Q, H, W)`` floating tensors on one device.

    The mask logits' values are left to :func:`check_finite` (:func:`run_scorers` checks each chunk as it reads it).
    """
    for name, x, ndim, shape in (("class_logits", class_logits, 2, "(Q, K+1)"), ("mask_logits", mask_logits, 3, "(Q, H, W)")):
        if not isinstance(x, torch.Tensor):
            raise InputError(f"{name}: expected a torch.Tensor {shape}, got {type(x).__name__}")
        if not x.is_floating_point():
            raise InputError(f"{name}: expected a floating-point tensor (raw logits), got dtype {x.dtype}")
        if x.ndim != ndim:
            raise InputError(f"{name}: expected shape {shape}, got {tuple(x.shape)}")
    q, k1 = class_logits.shape
    if k1 < 2:
        raise InputError(f"class_logits: need at least one known class plus the void column, got {k1} column(s)")
    if q < 1:
        raise InputError("class_logits: no queries (Q = 0)")
    if mask_logits.shape[0] != q:
        raise InputError(f"mask_logits: {mask_logits.shape[0]} queries but class_logits has {q}")
    if mask_logits.shape[1] < 1 or mask_logits.shape[2] < 1:
        raise InputError(f"mask_logits: empty mask shape {tuple(mask_logits.shape)}")
    if class_logits.device != mask_logits.device:
        raise InputError(f"class_logits is on {class_logits.device} but mask_logits is on {mask_logits.device}")
    check_finite("class_logits", class_logits)


def check_finite(name: str, x: torch.Tensor) -> None:
    """Raise if ``x`` holds NaN or ±inf. A finite sum proves every value finite (one cheap pass); only a
    non-finite sum, which an overflow of huge finite values can also give, needs the exact test."""
    if not math.isfinite(torch.sum(x)) and not bool(torch.isfinite(x).all()):
        raise InputError(f"{name}: contains NaN or infinite values")


def check_query_ids(name: str, ids, num_queries: int) -> None:
    """Raise if a query-index parameter points outside ``[0, Q)``."""
    bad = [i for i in ids if not 0 <= i < num_queries]
    if bad:
        raise InputError(f"{name}: query id(s) {bad} out of range for a model with {num_queries} queries")


class Queries:
    """Per-image query statistics, from the class logits alone (cheap; computed once per forward).

    ``probs`` = P ``(Q, K+1)``; ``known`` = P[:, :K]; ``conf`` = max over all K+1 columns (void
    included); ``label`` = argmax over all K+1 columns (first maximum); ``void`` = K; ``num_queries`` = Q.
    ``pixel_weights`` ``(K+3, Q)`` stacks ``P[:, :K]ᵀ``, the EAM weights ``max_{k<K} P[q,k]``, the
    known mass ``Σ_{k<K} P[q,k]`` and the void column ``P[:, K]``, so one matrix product gives S,
    Σ_q max_k P σ, Σ_k S_k and the void mass.
    """

    def __init__(self, class_logits: torch.Tensor):
        self.probs = torch.softmax(class_logits, dim=-1)
        self.num_queries, self.void = self.probs.shape[0], self.probs.shape[1] - 1
        self.known = self.probs[:, : self.void]
        self.conf, self.label = self.probs.max(dim=-1)
        self.pixel_weights = torch.cat([self.known.t(), self.known.amax(dim=1)[None], self.known.sum(dim=1)[None],
                                        self.probs[:, self.void][None]]).contiguous()

    def select(self, keep: torch.Tensor) -> torch.Tensor:
        """Query ids (int64, ascending) where the boolean ``keep (Q,)`` is true."""
        return torch.nonzero(keep).flatten()

    def scalar(self, value: float):
        """``value`` as a numpy scalar of the compute dtype (rounded as torch rounds a Python scalar operand)."""
        return torch.tensor(value, dtype=self.probs.dtype).numpy()[()]

    def ids(self, ids) -> torch.Tensor:
        """A list of query ids as an int64 tensor on the probabilities' device."""
        return torch.as_tensor(list(ids), dtype=torch.long, device=self.probs.device)


class Pixels:
    """Per-chunk context of one worker: mask logits of ``n`` pixels and what is derived from them, each at most once.

    ``n`` pixels (a multiple of :data:`CPU_CHUNK_ALIGN` on CPU: a chunk function returns ``n`` scores, those of
    padding pixels are dropped); ``logits`` ``(Q, n)``; :attr:`sigmoid` σ(M) of every query;
    :attr:`class_scores` S ``(K, n)``; :attr:`max_class_score` ``max_k S_k``; :attr:`eam_sum`
    ``Σ_q max_{k<K} P[q,k] σ(M_q)``; :attr:`known_mass` ``Σ_k S_k``; :attr:`void_mass` ``Σ_q P[q,K] σ(M_q)``;
    :attr:`exp_shifted` ``exp(S_k − max_k S_k)`` ``(K, n)``, :attr:`exp_sum` its sum over k and :attr:`log_sum_exp`
    ``log Σ_k exp S_k = max_k S_k + log exp_sum`` (one exponential pass for the softmax over S); all read-only. Scorers that read only a few queries
    (Maskomaly, Mask2Anomaly's refinement) call :meth:`sigmoid_rows`: gathered from the shared σ(M) when
    ``share_sigmoid`` (several scorers run) or when it is already computed, else the sigmoid of those rows alone; both are the same bits (:data:`CPU_CHUNK_ALIGN`),
    so a scorer's output does not depend on the scorers beside it. Everything lives in :meth:`buffer` s
    that the worker reuses chunk after chunk (no allocation per chunk); a scorer may overwrite and return
    its own buffers (its scores are copied out before the next scorer runs), never the shared ones.
    """

    def __init__(self, queries: Queries, share_sigmoid: bool = True):
        self.queries = queries
        self.share_sigmoid = share_sigmoid
        self.n = 0
        self._buffers: dict[tuple[str, torch.dtype], torch.Tensor] = {}
        self._views: dict[tuple[str, int | None, torch.dtype], torch.Tensor] = {}  # of the current chunk size

    def load(self, chunk: torch.Tensor) -> None:
        """Move on to the next chunk of mask logits ``(Q, n)`` (converted to the compute dtype in a buffer if need be)."""
        if chunk.shape[1] != self.n:
            self._views.clear()
        self.n, self.device = chunk.shape[1], chunk.device
        dtype = self.queries.probs.dtype
        self.logits = chunk if chunk.dtype == dtype else self.buffer("logits", chunk.shape[0]).copy_(chunk)
        self._sigmoid = self._weighted = self._max_class_score = self._exp = None

    def buffer(self, key: str, rows: int | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The worker's contiguous scratch tensor ``key``, shape ``(rows, n)`` (``(n,)`` if ``rows`` is None)."""
        dtype = dtype or self.queries.probs.dtype
        view = self._views.get((key, rows, dtype))
        if view is None:
            size = (1 if rows is None else rows) * self.n
            storage = self._buffers.get((key, dtype))
            if storage is None or storage.numel() < size:
                storage = self._buffers[key, dtype] = torch.empty(size, dtype=dtype, device=self.device)
            view = self._views[key, rows, dtype] = storage[:size] if rows is None else storage[:size].view(rows, self.n)
        return view

    @property
    def sigmoid(self) -> torch.Tensor:
        if self._sigmoid is None:
            self._sigmoid = torch.sigmoid(self.logits, out=self.buffer("sigmoid", self.queries.num_queries))
        return self._sigmoid

    @property
    def sigmoid_is_shared(self) -> bool:
        """Whether σ(M) of every query is (or will be) computed for this chunk: several scorers run, or one read it."""
        return self.share_sigmoid or self._sigmoid is not None

    def sigmoid_rows(self, rows: torch.Tensor, key: str) -> torch.Tensor:
        """σ(M) of the queries ``rows``, ``(len(rows), n)``, in the scorer's buffer ``key`` (it may modify it)."""
        out = self.buffer(key, len(rows))
        if self.sigmoid_is_shared:
            return torch.index_select(self.sigmoid, 0, rows, out=out)
        return torch.index_select(self.logits, 0, rows, out=out).sigmoid_()

    @property
    def weighted(self) -> torch.Tensor:
        """``Queries.pixel_weights @ σ(M)``, shape ``(K+3, n)``: S, the EAM sum, the known mass, the void mass."""
        if self._weighted is None:
            weights = self.queries.pixel_weights
            self._weighted = torch.mm(weights, self.sigmoid, out=self.buffer("weighted", weights.shape[0]))
        return self._weighted

    @property
    def class_scores(self) -> torch.Tensor:
        """``S = P[:, :K]ᵀ σ(M)``, shape ``(K, n)``."""
        return self.weighted[: self.queries.void]

    @property
    def max_class_score(self) -> torch.Tensor:
        if self._max_class_score is None:
            self._max_class_score = torch.amax(self.class_scores, dim=0, out=self.buffer("max_class_score"))
        return self._max_class_score

    def _softmax_parts(self):
        """``(S − max_k S, exp of it, its sum over k, log Σ_k exp S_k)``, computed once per chunk."""
        if self._exp is None:
            k = self.queries.void
            shifted = torch.sub(self.class_scores, self.max_class_score, out=self.buffer("shifted_scores", k))
            e = torch.exp(shifted, out=self.buffer("exp_shifted", k))
            total = torch.sum(e, dim=0, out=self.buffer("exp_sum"))
            lse = torch.log(total, out=self.buffer("log_sum_exp")).add_(self.max_class_score)
            self._exp = (shifted, e, total, lse)
        return self._exp

    @property
    def shifted_scores(self) -> torch.Tensor:
        """``S_k(x) − max_k S_k(x)``, ``(K, n)`` (all <= 0)."""
        return self._softmax_parts()[0]

    @property
    def exp_shifted(self) -> torch.Tensor:
        """``exp(S_k(x) − max_k S_k(x))``, ``(K, n)``: the softmax over S before normalisation."""
        return self._softmax_parts()[1]

    @property
    def exp_sum(self) -> torch.Tensor:
        """``Σ_k exp(S_k(x) − max_k S_k(x))``, ``(n,)`` (in [1, K]): the softmax denominator."""
        return self._softmax_parts()[2]

    @property
    def log_sum_exp(self) -> torch.Tensor:
        """``log Σ_k exp S_k(x) = max_k S_k + log exp_sum``, ``(n,)``."""
        return self._softmax_parts()[3]

    @property
    def void_mass(self) -> torch.Tensor:
        """``Σ_q P[q,K] σ(M_q(x))``, ``(n,)``: the no-object mass."""
        return self.weighted[self.queries.void + 2]

    @property
    def eam_sum(self) -> torch.Tensor:
        return self.weighted[self.queries.void]

    @property
    def known_mass(self) -> torch.Tensor:
        return self.weighted[self.queries.void + 1]


def one_minus(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = 1 − x`` (one rounding, the same bits as ``1 - x``); ``out`` may be ``x``."""
    return torch.neg(x, out=out).add_(1)


def max_weighted(sigmoid: torch.Tensor, weights: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = max_j weights[j] · sigmoid[j]`` per pixel for a scratch ``(m, n)`` block (modified in place); 0 if ``m = 0``."""
    if sigmoid.shape[0] == 0:
        return out.zero_()
    return torch.amax(sigmoid.mul_(weights[:, None]), dim=0, out=out)
