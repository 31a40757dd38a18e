"""A DVS (event camera) pixel model watching a still image move along saccades, as N-MNIST was recorded.

Scene: the image is drawn bright on a dark background (intensity ``background + (1 - background) * ink``),
scaled to ``digit_fraction`` of the sensor, and translated along a closed equilateral triangle of side
``amplitude`` sensor pixels, one straight leg per saccade at constant speed (N-MNIST: 3 saccades of 100 ms).
Each sensor pixel samples the scene bilinearly at its centre every ``dt_us``.

Pixel: log intensity L against a per-pixel reference L_ref (set to the first frame). An ON event fires when
L - L_ref >= C_on, an OFF event when L_ref - L >= C_off; each event moves L_ref by one threshold towards L, at most
one event per pixel and step, and none within ``refractory_us`` of the pixel's last event. C_on and C_off are
per pixel: nominal + ``mismatch_sigma`` * N(0, 1), at least ``MIN_CONTRAST`` (the sensor's fixed pattern, drawn
once per seed). Background activity adds ``noise_hz`` Poisson events per pixel (random polarity, at step times).
Everything random comes from one ``numpy.random.Generator(PCG64(seed))``, so a seed fixes every event.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

MIN_CONTRAST = 0.01


@dataclass(frozen=True)
class SensorParams:
    """Scene, motion and pixel parameters (defaults: N-MNIST-like motion, a typical DVS128 pixel)."""

    size: int = 16
    digit_fraction: float = 0.75
    amplitude: float = 2.0
    saccades: int = 3
    saccade_ms: float = 100.0
    dt_us: int = 500
    background: float = 0.05
    contrast_on: float = 0.25
    contrast_off: float = 0.25
    mismatch_sigma: float = 0.03
    refractory_us: int = 1000
    noise_hz: float = 0.1

    def __post_init__(self) -> None:
        if self.size < 4 or self.saccades < 1 or self.dt_us < 1 or not 0 < self.background < 1:
            raise ValueError(f"invalid sensor parameters: {self}")
        if min(self.contrast_on, self.contrast_off) < MIN_CONTRAST or self.mismatch_sigma < 0 or self.noise_hz < 0:
            raise ValueError(f"contrast thresholds must be >= {MIN_CONTRAST}, mismatch and noise >= 0: {self}")

    @property
    def steps(self) -> int:
        return int(round(self.saccades * self.saccade_ms * 1000 / self.dt_us))

    def as_dict(self) -> dict:
        return asdict(self)


def saccade_path(params: SensorParams) -> np.ndarray:
    """Displacement (dy, dx) in sensor pixels at the end of every step: [steps + 1, 2], starting at a vertex.

    The triangle's centroid is the origin, so the image stays centred on average.
    """
    angles = np.deg2rad([90.0, 210.0, 330.0])
    radius = params.amplitude / np.sqrt(3.0)
    vertices = radius * np.stack([-np.sin(angles), np.cos(angles)], axis=1)
    per_leg = params.steps / params.saccades
    t = np.arange(params.steps + 1) / per_leg
    leg = np.minimum(t.astype(np.int64), params.saccades - 1)
    frac = (t - leg)[:, None]
    start, end = vertices[leg % 3], vertices[(leg + 1) % 3]
    return start + frac * (end - start)


def sampling_matrix(image_size: int, params: SensorParams, dy: float, dx: float) -> np.ndarray:
    """[size*size, image_size**2] bilinear weights of the image pixels seen by each sensor pixel centre."""
    s, n = params.size, image_size
    scale = params.digit_fraction * s / n  # sensor pixels per image pixel
    centres = np.arange(s) + 0.5
    rows = (centres - s / 2 - dy) / scale + n / 2 - 0.5
    cols = (centres - s / 2 - dx) / scale + n / 2 - 0.5
    wy, wx = _interp_weights(rows, n), _interp_weights(cols, n)
    return np.einsum("ia,jb->ijab", wy, wx).reshape(s * s, n * n)


def _interp_weights(coords: np.ndarray, n: int) -> np.ndarray:
    """[len(coords), n] linear-interpolation weights onto integer positions 0..n-1 (zero outside the image)."""
    lo = np.floor(coords).astype(np.int64)
    frac = coords - lo
    w = np.zeros((coords.size, n))
    for offset, weight in ((0, 1.0 - frac), (1, frac)):
        idx = lo + offset
        ok = (idx >= 0) & (idx < n)
        w[np.flatnonzero(ok), idx[ok]] += weight[ok]
    return w


@dataclass(frozen=True)
class EventTable:
    """Events of many recordings, concatenated: recording ``i`` is rows ``offsets[i]:offsets[i + 1]``."""

    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    t: np.ndarray
    offsets: np.ndarray

    def rows(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))


def simulate(images: np.ndarray, params: SensorParams, seed: int) -> EventTable:
    """Events of every image of ``images`` ([N, n, n] ink in [0, 1]) on one simulated sensor."""
    rng = np.random.Generator(np.random.PCG64(seed))
    count, n = images.shape[0], images.shape[1]
    pixels = params.size * params.size
    c_on = np.maximum(params.contrast_on + params.mismatch_sigma * rng.standard_normal(pixels), MIN_CONTRAST)
    c_off = np.maximum(params.contrast_off + params.mismatch_sigma * rng.standard_normal(pixels), MIN_CONTRAST)
    flat = images.reshape(count, n * n)
    path = saccade_path(params)

    def log_intensity(step: int) -> np.ndarray:
        ink = flat @ sampling_matrix(n, params, *path[step]).T
        return np.log(params.background + (1.0 - params.background) * np.clip(ink, 0.0, 1.0))

    reference = log_intensity(0)
    last = np.full((count, pixels), -np.inf)
    chunks = []
    for step in range(1, params.steps + 1):
        t_us = step * params.dt_us
        diff = log_intensity(step) - reference
        ready = (t_us - last) >= params.refractory_us
        on = ready & (diff >= c_on)
        off = ready & (-diff >= c_off)
        reference += on * c_on - off * c_off
        last[on | off] = t_us
        sample, pixel = np.nonzero(on | off)
        chunks.append((sample, pixel, on[sample, pixel], np.full(sample.size, t_us)))
    chunks.append(_background_activity(rng, count, params))
    sample, pixel, polarity, t = (np.concatenate(parts) for parts in zip(*chunks))
    order = np.lexsort((pixel, t, sample))  # per recording: time order, then pixel order
    sample, pixel = sample[order], pixel[order]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(sample, minlength=count))])
    return EventTable(x=(pixel % params.size).astype(np.int16), y=(pixel // params.size).astype(np.int16),
                      p=polarity[order].astype(np.int8), t=t[order].astype(np.int64), offsets=offsets)


def _background_activity(rng: np.random.Generator, count: int, params: SensorParams) -> tuple[np.ndarray, ...]:
    """Poisson noise events (sample, pixel, polarity, time) at ``noise_hz`` per pixel, on the step grid."""
    pixels = params.size * params.size
    duration_s = params.steps * params.dt_us * 1e-6
    per_pixel = rng.poisson(params.noise_hz * duration_s, size=count * pixels)
    where = np.repeat(np.arange(count * pixels), per_pixel)
    steps = rng.integers(1, params.steps + 1, size=where.size)
    polarity = rng.random(where.size) < 0.5
    return where // pixels, where % pixels, polarity, steps * params.dt_us
