"""What the API tests share besides fixtures (imported as `from bodies import ...`): the limits the test
apps run with, the bodies each protocol takes (PNGs, digit strips, V2 JSON and binary tensors), and a live
`digits serve` on loopback."""

from __future__ import annotations
import io
import json
import os
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
import numpy as np
from PIL import Image


MAX_BATCH, MAX_BODY = 8, 2 * 2**20


def settings(**changes):
    """Service settings for the tests: small limits (max_batch 8, 2 MiB bodies), `changes` on top."""
    from digits.api.settings import Settings

    return Settings(**{"max_batch": MAX_BATCH, "max_body_bytes": MAX_BODY, "timeout_seconds": 10.0, **changes})


def png(array: np.ndarray, scale: int = 4, invert: bool = True) -> bytes:
    """An MNIST-style array as a PNG a person might upload: dark ink on white, enlarged."""
    picture = Image.fromarray(255 - array if invert else array)
    picture = picture.resize((array.shape[1] * scale, array.shape[0] * scale), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def digit_strip(cells: list[np.ndarray], gap: int = 8, border: int = 12) -> np.ndarray:
    """MNIST digits side by side on one black canvas: a number to read."""
    width = 2 * border + 28 * len(cells) + gap * (len(cells) - 1)
    canvas = np.zeros((28 + 2 * border, width), np.uint8)
    for position, cell in enumerate(cells):
        left = border + position * (28 + gap)
        canvas[border:border + 28, left:left + 28] = cell
    return canvas


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels in a few bytes (a decompression bomb's header)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def detail(response) -> str:
    """The error message of a response: FastAPI's `detail` (/predict) or the protocols' `error`."""
    body = response.json()
    return body["detail"] if "detail" in body else body["error"]


def v2_request(batch: np.ndarray, datatype: str = "FP32", **extra) -> dict:
    """An Open Inference Protocol request with `batch` as the JSON data of the `images` input."""
    return {"inputs": [{"name": "images", "shape": list(batch.shape), "datatype": datatype,
                        "data": batch.ravel().tolist()}], **extra}


def binary_body(header: dict, *tensors: bytes) -> tuple[bytes, dict]:
    """Triton's binary tensor extension: the JSON header, then raw tensors; with its headers."""
    json_part = json.dumps(header).encode()
    return json_part + b"".join(tensors), {"Inference-Header-Content-Length": str(len(json_part)),
                                           "Content-Type": "application/octet-stream"}


def clean_environment() -> dict:
    """The environment without the developer's DIGITS_* and PROMETHEUS_* settings."""
    return {key: value for key, value in os.environ.items() if not key.startswith(("DIGITS_", "PROMETHEUS_"))}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    """`python -m digits.api RUN` (= `digits serve RUN`) as a subprocess on a free loopback port; with
    `grpc=True` also gRPC (`--grpc-port`) on a second free port, at `grpc_url` (host:port). With `run=None`
    no run is named and the runs directory is empty: the server reads with the shipped model."""

    def __init__(self, run: Path | None, log_dir: Path, *flags: str, grpc: bool = False):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.grpc_url = None
        if grpc:
            grpc_port = free_port()
            while grpc_port == self.port:  # both probes closed their sockets: the kernel may hand one out twice
                grpc_port = free_port()
            self.grpc_url, flags = f"127.0.0.1:{grpc_port}", (*flags, "--grpc-port", str(grpc_port))
        self.environment = clean_environment()
        if run is None:
            self.environment["DIGITS_RUNS_DIR"] = str(log_dir / "no-runs")
        named = [] if run is None else [str(run)]
        self.command = [sys.executable, "-m", "digits.api", *named, "--port", str(self.port), "--max-batch", "16",
                        "--timeout-seconds", "3", "--log-level", "warning", *flags]
        self.log = log_dir / f"digits-api-{self.port}.log"

    def start(self, timeout: float = 180) -> "LiveServer":
        import httpx2 as httpx

        self.process = subprocess.Popen(self.command, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
                                        env=self.environment)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited ({self.process.returncode}): {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/v2/health/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout} s: {self.log.read_text()[-2000:]}")

    def __enter__(self) -> "LiveServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
