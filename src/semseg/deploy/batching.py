"""The server's inference worker: decoded requests queue up and one thread predicts
them, several of one image size in one forward pass when that is faster on this
hardware (`batch_size_that_pays` measures it when the server starts: on a 2-core CPU a
batch of 4 gave 1.48x the images/s for lraspp and 1.26x for the CamVid recipe, but 0.78x
for segformer_b0; benchmarks/onnx_speed.py)."""

from __future__ import annotations

import queue
import statistics
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from semseg.engine.predictor import Predictor

GAIN_NEEDED = 1.1  # a batch must give 10 % more images/s to be used


@dataclass
class _Job:
    image: np.ndarray  # H x W x 3 uint8
    future: Future


class InferenceWorker:
    """One thread predicting queued images, up to `max_batch` of one size at a time."""

    def __init__(self, predictor: Predictor, max_batch: int) -> None:
        self.predictor = predictor
        self.max_batch = max_batch
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="semseg-predict", daemon=True)
        self._thread.start()

    def submit(self, image: np.ndarray) -> Future:
        """The future mask (H x W class indices) of `image`."""
        job = _Job(image, Future())
        self._jobs.put(job)
        return job.future

    def stop(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._jobs.put(None)  # stop after this batch
                    break
                batch.append(job)
            for group in _by_size(batch):
                self._predict(group)

    def _predict(self, jobs: list[_Job]) -> None:
        try:
            if len(jobs) == 1:
                masks = [self.predictor.predict(jobs[0].image)]
            else:
                masks = self.predictor.predict_batch([job.image for job in jobs])
        except Exception as error:  # the request gets the error, the worker goes on
            for job in jobs:
                job.future.set_exception(error)
            return
        for job, mask in zip(jobs, masks, strict=True):
            job.future.set_result(mask)


def _by_size(jobs: list[_Job]) -> list[list[_Job]]:
    groups: dict[tuple[int, ...], list[_Job]] = {}
    for job in jobs:
        groups.setdefault(job.image.shape, []).append(job)
    return list(groups.values())


def batch_size_that_pays(
    predictor: Predictor, largest: int = 4, size: tuple[int, int] = (256, 320)
) -> int:
    """`largest` when predicting that many images at once gave at least GAIN_NEEDED times
    the images/s of one at a time on a test image of `size`, else 1."""
    if largest <= 1:
        return 1
    image = np.full((*size, 3), 128, dtype=np.uint8)
    one = _seconds(lambda: predictor.predict(image))
    many = _seconds(lambda: predictor.predict_batch([image] * largest)) / largest
    return largest if one / many >= GAIN_NEEDED else 1


def _seconds(call, repeats: int = 3) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
