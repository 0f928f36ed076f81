"""When to decode what: utterances, endpoints and partials from speech probabilities alone.

Whisper is a batch model: it transcribes a finished piece of audio, not a stream. The
``Segmenter`` turns a stream of voice-activity probabilities (one per 32 ms window, from
``vad.StreamingVad``) into decisions for the engine, in the style of a sans-IO protocol core:
inputs are the audio clock (``advance``), the windows' probabilities (``window``), the end of
a feed (``poll``), a flush (``flush``) and what each decode cost (``report``); outputs are the
frozen decisions below. It holds no audio, calls no model and reads no clock, so its rules are
tested with made-up probabilities and costs. Positions are absolute 16 kHz sample indices.

1. **Speech onset** (a window at or above ``vad_threshold``) is ``SpeechStarted``. The
   utterance includes ``preroll_s`` of audio before it.
2. **Partials** (``DecodePartial``) re-decode the open utterance ``first_partial_s`` after
   onset and then every ``partial_interval_s`` of new audio, once ``min_speech_s`` of it was
   voiced; while no partial of the utterance was shown, a decode that showed nothing is
   retried ``first_partial_retry_s`` later. None is decoded during a pause (the early final
   is). They are optional work, paid from a budget (below); one the budget cannot pay for is
   ``PartialSkipped``.
3. **Early final.** Once a pause (a window below ``vad_threshold - 0.15``) has lasted
   ``early_final_s``, ``DecodeEarly`` asks for the final's decode now, shown as a partial
   meanwhile. If the pause reaches ``end_silence_s`` it is the endpoint: ``Final`` with
   ``decode="early"`` tells the engine to return that decode at once (``end_of_speech``), so a
   final's latency is the endpoint wait, not the wait plus a decode. If speech resumes first,
   the early decode was only a partial and the utterance goes on.
4. **Long utterances** reaching ``max_utterance_s`` are cut at their quietest window of the
   last ``cut_search_s`` (but not the last 0.5 s) and finalized with ``end_of_speech=False``;
   the speech after the cut continues as a new utterance without a second ``SpeechStarted``
   (voice did not start again). ``flush`` finalizes the open utterance now.

**The partial budget** is on the audio clock and on measured decode cost, never on elapsed
time, and has two parts:

- *Lag*: every decode the engine reports (partial, early or final) adds what the recognizer
  measured it took (``cost_s``, excluding any wait for a worker) to ``behind_s``, and every
  second of audio fed takes one second off it (down to 0): with audio arriving in real time,
  that is how far behind the stream is. No partial is decoded while it is above
  ``max_behind_s``: whatever the machine's speed, the work that would delay a final (which
  waits behind whatever the stream decodes first) is the optional work, and it goes first.
- *Share*: every second of audio earns ``compute_budget`` seconds of partial decoding (capped
  at ``max_credit_s``), and each partial spends its measured cost. A partial is decoded only
  if the credit covers its expected cost: an exponential average of measured partial cost per
  second of encoder window (the work a decode does, ``work_of`` the utterance's duration),
  times the window the next partial will encode. The first partial of an utterance, the one a
  reader waits for, may borrow ``first_partial_debt_s``. Finals are not paid from it: they
  are never optional, and when they were, a machine whose finals alone cost more than the
  budget never showed a partial again (the credit only went down).

A stream whose decodes are slow (a loaded machine, several streams sharing the cores) thus
shows fewer partials and keeps its final latency. Waiting does not count, so a stream whose
audio simply arrives late, or whose decode queued behind another stream's, is not charged for
it; and with the same probabilities and costs the decisions are always the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Decision",
    "DecodeEarly",
    "DecodePartial",
    "Final",
    "PartialSkipped",
    "Segmenter",
    "SegmenterSettings",
    "SpeechStarted",
]

SAMPLE_RATE = 16000
WINDOW = 512  # one VAD window: 32 ms at 16 kHz
_SILENCE_HYSTERESIS = 0.15  # a pause starts this far below the speech threshold


@dataclass(frozen=True, slots=True)
class SegmenterSettings:
    """The timing rules (seconds unless said otherwise); the engine validates its arguments."""

    end_silence_s: float = 0.3
    early_final_s: float = 0.1
    first_partial_s: float = 0.25
    partial_interval_s: float = 0.6
    first_partial_retry_s: float = 0.2
    compute_budget: float = 0.10  # partial decode seconds earned per audio second
    max_credit_s: float = 0.5
    max_behind_s: float = 0.1  # no partial while the stream is further behind real time
    first_partial_debt_s: float = 0.25
    max_utterance_s: float = 15.0
    cut_search_s: float = 3.0
    min_speech_s: float = 0.1
    preroll_s: float = 0.3
    vad_threshold: float = 0.5
    #: Expected partial cost before any was measured, per second of work (0.08 s for the
    #: default 10 s encoder window of tiny.en on 2 cores).
    initial_cost_per_work_s: float = 0.008
    #: Weight of the newest measurement in the average of partial cost per work second.
    cost_smoothing: float = 0.5


# -- decisions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Voice activity began at sample ``at``."""

    at: int


@dataclass(frozen=True, slots=True)
class DecodePartial:
    """Decode ``[start, end)`` greedily now and show it as a partial (speech began at ``onset``)."""

    start: int
    end: int
    onset: int


@dataclass(frozen=True, slots=True)
class DecodeEarly:
    """A pause began: decode ``[start, end)`` as the final now; show it as a partial meanwhile."""

    start: int
    end: int
    onset: int


@dataclass(frozen=True, slots=True)
class PartialSkipped:
    """A partial was due at ``at`` but the budget could not pay ``cost_s`` from ``credit_s``,
    or the stream was ``behind_s`` behind real time (above ``max_behind_s``)."""

    at: int
    credit_s: float
    cost_s: float
    behind_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Final:
    """The utterance ``[start, end)`` is done.

    ``decode`` says where its text comes from: ``"early"`` the last ``DecodeEarly`` (nothing
    was said since), ``"now"`` a final decode of ``[start, end)``, ``"none"`` nothing (too
    little voiced audio to be worth a decode): the utterance ends without a result.
    ``end_of_speech`` is False for a cut or a flush in the middle of speech.
    """

    start: int
    end: int
    end_of_speech: bool
    decode: Literal["early", "now", "none"]
    #: Where the voice began (``start`` plus the preroll; the cut point for the rest of a
    #: cut utterance): no word of the final starts much before it.
    onset: int = 0


Decision = SpeechStarted | DecodePartial | DecodeEarly | PartialSkipped | Final


# -- the core --------------------------------------------------------------------------------


class Segmenter:
    """VAD endpointing and partial scheduling for one stream. See the module docstring.

    ``work_of(duration_s)`` is the work a decode of ``duration_s`` of audio does, in the unit
    the engine reports it in (``report(work_s=...)``): the encoder window for Whisper. The
    default, the duration itself, makes the cost "decode seconds per audio second".
    """

    def __init__(
        self,
        settings: SegmenterSettings | None = None,
        *,
        work_of: Callable[[float], float] | None = None,
    ):
        self.settings = s = settings or SegmenterSettings()
        self._work_of = work_of or (lambda duration_s: duration_s)
        self._threshold = s.vad_threshold
        self._quiet = s.vad_threshold - _SILENCE_HYSTERESIS
        self._preroll = int(s.preroll_s * SAMPLE_RATE)
        self._first_partial = int(s.first_partial_s * SAMPLE_RATE)
        self._interval = int(s.partial_interval_s * SAMPLE_RATE)
        self._retry = int(s.first_partial_retry_s * SAMPLE_RATE)
        self._min_speech = s.min_speech_s * SAMPLE_RATE
        self._early_final = s.early_final_s * SAMPLE_RATE
        self._end_silence = s.end_silence_s * SAMPLE_RATE
        self._max_utterance = s.max_utterance_s * SAMPLE_RATE
        self._cut_search = int(s.cut_search_s * SAMPLE_RATE)
        #: Samples of audio received (the audio clock) and covered by windows so far.
        self.received = 0
        self.windowed = 0
        # Utterance state.
        self.in_speech = False
        self._utt_start = 0
        self._onset = 0
        self._prev_end = 0  # end of the last finalized utterance
        self._silence_from: int | None = None
        self._voiced_windows = 0
        self._window_probs: list[tuple[int, float]] = []
        self._next_partial_at = 0
        self._partial_shown = False  # a partial of this utterance reached the reader
        self._early_ready = False  # a DecodeEarly produced text and nothing was said since
        # Budget, in decode seconds.
        self.credit_s = 0.0
        self.behind_s = 0.0
        self._cost_per_work = s.initial_cost_per_work_s

    # -- inputs ----------------------------------------------------------------------------

    def advance(self, n_samples: int) -> None:
        """``n_samples`` more audio arrived: the audio clock moves and the budget earns."""
        if n_samples <= 0:
            return
        s = self.settings
        self.received += n_samples
        self.credit_s = min(
            s.max_credit_s, self.credit_s + s.compute_budget * n_samples / SAMPLE_RATE
        )
        self.behind_s = max(0.0, self.behind_s - n_samples / SAMPLE_RATE)

    def window(self, prob: float) -> list[Decision]:
        """The next VAD window (``WINDOW`` samples from ``windowed``) had speech probability
        ``prob``. Its audio must have arrived (``advance``)."""
        start = self.windowed
        if start + WINDOW > self.received:
            raise ValueError("window() before advance() delivered its audio")
        self.windowed += WINDOW
        return self._on_window(start, float(prob))

    def poll(self) -> list[Decision]:
        """The engine has processed a feed's windows: a partial, if one is due and affordable.

        None while a pause runs: the early final's decode is due within ``early_final_s`` and
        serves as the partial; a partial decoded now would only delay it (a stream decodes one
        thing at a time). A partial that fell due meanwhile is decoded when speech resumes.
        """
        if not self.in_speech or self.received < self._next_partial_at:
            return []
        if self._silence_from is not None:
            return []
        self._next_partial_at = self.received + self._interval
        if self._voiced_windows * WINDOW < self._min_speech:
            return []
        debt = 0.0 if self._partial_shown else self.settings.first_partial_debt_s
        cost = self.partial_cost_s()
        if self.credit_s + debt < cost or self.behind_s > self.settings.max_behind_s:
            return [
                PartialSkipped(
                    at=self.received, credit_s=self.credit_s, cost_s=cost, behind_s=self.behind_s
                )
            ]
        return [DecodePartial(start=self._utt_start, end=self.received, onset=self._onset)]

    def flush(self) -> list[Decision]:
        """Finalize the open utterance now (a flush, or the end of the audio)."""
        if not self.in_speech:
            return []
        return [self._finalize(self.received, end_of_speech=self._silence_from is not None)]

    def report(
        self,
        decision: Decision,
        *,
        cost_s: float,
        work_s: float = 0.0,
        produced: bool = True,
        shown: bool = False,
    ) -> None:
        """What the engine's decode for ``decision`` did.

        ``cost_s``: the decode's measured seconds (the lag; a partial's is also paid from the
        credit); ``work_s``: its work
        in ``work_of`` units (a partial's updates the expected partial cost); ``produced``: it
        gave usable text (an early decode that did not is asked for again on the next quiet
        window); ``shown``: a partial reached the reader (which ends the first-partial debt).
        """
        self.behind_s += cost_s
        if isinstance(decision, DecodePartial):
            self.credit_s -= cost_s
        if isinstance(decision, DecodePartial) and work_s > 0:
            a = self.settings.cost_smoothing
            self._cost_per_work = (1 - a) * self._cost_per_work + a * cost_s / work_s
        if isinstance(decision, DecodeEarly) and produced:
            self._early_ready = True
            self._next_partial_at = self.received + self._interval
        if isinstance(decision, DecodePartial) and not shown and not self._partial_shown:
            # The first partial found nothing to show yet (a breath, half a word): the reader
            # is still waiting, so try again sooner than the regular interval.
            self._next_partial_at = min(self._next_partial_at, self.received + self._retry)
        if shown and isinstance(decision, (DecodePartial, DecodeEarly)):
            self._partial_shown = True

    # -- state the engine needs ------------------------------------------------------------

    def partial_cost_s(self) -> float:
        """The expected cost of a partial of the open utterance now, in decode seconds."""
        duration = max(0, self.received - self._utt_start) / SAMPLE_RATE
        return self._cost_per_work * self._work_of(duration)

    @property
    def keep_from(self) -> int:
        """The earliest sample a future decision can need: audio before it may be dropped."""
        if self.in_speech:
            return self._utt_start
        return self.windowed - self._preroll

    # -- rules -----------------------------------------------------------------------------

    def _on_window(self, start: int, p: float) -> list[Decision]:
        end = start + WINDOW
        if not self.in_speech:
            if p < self._threshold:
                return []
            self.in_speech = True
            start = max(start, self._prev_end)  # after a flush the window may straddle it
            self._onset = start
            self._utt_start = max(self._prev_end, start - self._preroll)
            self._silence_from = None
            self._voiced_windows = 1
            self._window_probs = [(start, p)]
            self._next_partial_at = start + self._first_partial
            self._partial_shown = False
            return [SpeechStarted(at=start)]
        self._window_probs.append((start, p))
        if p >= self._threshold:
            self._voiced_windows += 1
            self._silence_from = None
            self._early_ready = False  # speech resumed: the early final was only a partial
        elif p < self._quiet and self._silence_from is None:
            self._silence_from = start
        if self._silence_from is not None:
            silent = end - self._silence_from
            if silent >= self._end_silence:
                return [self._finalize(end, end_of_speech=True)]
            if silent >= self._early_final and not self._early_ready:
                return [DecodeEarly(start=self._utt_start, end=end, onset=self._onset)]
        if end - self._utt_start >= self._max_utterance:
            return [self._cut(end)]
        return []

    def _cut(self, now: int) -> Final:
        """The utterance is too long: finalize up to its quietest recent window, keep the rest."""
        horizon = now - self._cut_search
        guard = now - int(0.5 * SAMPLE_RATE)
        candidates = [(p, s) for s, p in self._window_probs if horizon <= s <= guard]
        cut = min(candidates)[1] + WINDOW // 2 if candidates else now
        return self._finalize(cut, end_of_speech=False, continue_speech=True)

    def _finalize(self, end: int, *, end_of_speech: bool, continue_speech: bool = False) -> Final:
        start, onset = self._utt_start, self._onset
        voiced = self._voiced_windows * WINDOW
        if self._early_ready and not continue_speech:
            decode = "early"  # decoded when the pause began; nothing was said since
        elif voiced >= self._min_speech and end > start:
            decode = "now"
        else:
            decode = "none"
        self._early_ready = False
        self._prev_end = end
        if continue_speech:
            self._utt_start = end
            self._onset = end
            self._window_probs = [(s, p) for s, p in self._window_probs if s >= end]
            self._voiced_windows = sum(p >= self._threshold for _, p in self._window_probs)
            self._next_partial_at = self.received + self._interval
            self._partial_shown = False
        else:
            self.in_speech = False
            self._window_probs = []
            self._voiced_windows = 0
            self._silence_from = None
        return Final(
            start=start, end=end, end_of_speech=end_of_speech, decode=decode, onset=onset
        )
