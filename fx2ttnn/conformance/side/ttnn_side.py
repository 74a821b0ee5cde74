"""The real-ttnn side of ``fx2ttnn conformance``: runs in the CPython 3.12 side environment (``ttnn==0.81.1``,
numpy; no torch, no fx2ttnn import), started as a script by ``fx2ttnn.conformance.sideenv``.

    python3.12 ttnn_side.py REQUEST.json RESPONSE.json

The request (written by the 3.11 side) is data only: JSON plus raw little-endian buffers in one ``.bin`` file.
Modes:
  ``replay``   bind every serialized call through the real bindings and record how far it got (in forked workers:
               a worker runs the calls in order until one dereferences the missing device and kills it; that
               call is recorded from tt-metal's crash report and a new worker resumes after it);
  ``numerics`` convert host arrays with the real host converter (``ttnn.Tensor(ndarray, ...)``, what
               ``ttnn.from_torch`` calls after its argument checks) and read them back (values and raw bytes);
  ``probe``    run ``fx2ttnn/runtime/ttnn_probe.py`` (the backend's torch-free probe) against the real package.

The process runs against a mock Wormhole n150 cluster (``TT_METAL_MOCK_CLUSTER_DESC_PATH``, set by the caller for
``replay`` and ``numerics``): ttnn's host conversions to bfloat16 / bfloat8_b / bfloat4_b need the chip's tile
sizes, which tt-metal takes from its cluster context even for host tensors.  Nothing is dispatched: no device opens
(with the mock cluster, ``ttnn.open_device`` stops at "sfpi not found": it builds firmware with the kernel toolchain,
which the wheel does not ship).
"""
from __future__ import annotations

import inspect
import json
import os
import pickle
import re
import select
import sys
import time
import traceback
import warnings

import numpy as np

import ttnn  # noqa: E402  (the real package: this file only ever runs in the side environment)

DEVICE_WORDS = re.compile(r"device|storage_type|StorageType|DEVICE|buffer\(\)|is_allocated", re.I)
FATAL = re.compile(r"TT_(?:FATAL|THROW) @ (?P<where>\S+?):(?P<line>\d+): (?P<cond>[^\n]*)(?:\ninfo:\n(?P<msg>.*?))?"
                   r"(?:\nbacktrace:|$)", re.S)
CALL_TIMEOUT_S = 120


# ---------------------------------------------------------------------------------------------
# rebuilding values

def resolve(path: str):
    obj = ttnn
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


NP_DTYPES = {"float32": np.float32, "int32": np.int32, "uint32": np.uint32, "int64": np.int64, "uint8": np.uint8,
             "uint16": np.uint16, "int16": np.int16, "bool": np.bool_, "float64": np.float64}
TTNN_HOST_SOURCE = {"bfloat16": np.float32, "bfloat8_b": np.float32, "bfloat4_b": np.float32, "float32": np.float32,
                    "int32": np.int32, "uint32": np.uint32, "uint16": np.uint16, "uint8": np.uint8}


class Builder:
    """Turns the request's data back into arguments: real ttnn tensors, enums, configs (``Construct``s are called
    with the real constructors), host arrays standing in for host torch tensors."""

    def __init__(self, blob: bytes):
        self.blob = blob
        self.approximated: list[str] = []
        # tensors of calls that are only matched against a signature (never handed to ttnn, so never changed), by
        # spec: a worker builds each such spec once (a conv weight padded to tiles takes a quarter second)
        self.reusable: dict[str, object] | None = None

    def host_array(self, spec: dict) -> np.ndarray:
        dtype = NP_DTYPES[spec["dtype"]]
        if spec.get("data") is not None:
            off, n = spec["data"]
            return np.frombuffer(self.blob[off:off + n], dtype=dtype).reshape(spec["shape"]).copy()
        return np.zeros(spec["shape"], dtype=dtype)

    def memory_config(self, mc: dict | None):
        if mc is None:
            return None
        buffer = mc["buffer_type"]
        if mc["memory_layout"] == "INTERLEAVED":
            return ttnn.DRAM_MEMORY_CONFIG if buffer == "DRAM" else ttnn.L1_MEMORY_CONFIG
        shard = mc.get("shard_spec")
        if shard is None:
            # a sharded label without a shard spec (the reference's stand-in for a sharding an op chooses itself on
            # the device): no host tensor can carry it, so the argument is built L1-interleaved and the record says so
            self.approximated.append(f"{mc['memory_layout']} without a shard spec built as L1 interleaved")
            return ttnn.L1_MEMORY_CONFIG
        strategy = {"HEIGHT_SHARDED": "HEIGHT", "WIDTH_SHARDED": "WIDTH", "BLOCK_SHARDED": "BLOCK"}[mc["memory_layout"]]
        grid = shard["grid"]
        return ttnn.create_sharded_memory_config(
            shard["shape"], core_grid=ttnn.CoreGrid(y=grid["y"], x=grid["x"]),
            strategy=getattr(ttnn.ShardStrategy, strategy),
            orientation=getattr(ttnn.ShardOrientation, shard.get("orientation", "ROW_MAJOR")),
            use_height_and_width_as_shard_shape=True)

    def tensor(self, spec: dict):
        """A host ttnn tensor of the spec's shape, dtype, layout and memory config (zeros unless data came)."""
        if self.reusable is None:
            return self._tensor(spec)
        key = json.dumps(spec, sort_keys=True)
        if key not in self.reusable:
            self.reusable[key] = self._tensor(spec)
        return self.reusable[key]

    def _tensor(self, spec: dict):
        dtype = resolve(spec["dtype"])
        layout = resolve(f"{spec['layout']}_LAYOUT")
        source = self.host_array({"shape": spec["shape"], "dtype": np.dtype(TTNN_HOST_SOURCE[spec["dtype"]]).name,
                                  "data": spec.get("data")})
        mc = self.memory_config(spec.get("memory"))
        if mc is None or not mc.is_sharded():
            return ttnn.Tensor(source, data_type=dtype, layout=layout, mem_config=mc)
        # the ndarray constructor refuses sharded configs on host; the list constructor takes one
        values = source.reshape(-1).tolist()
        return ttnn.Tensor(values, list(spec["shape"]), dtype, layout, None, mc)

    def value(self, v):
        if isinstance(v, dict):
            t = v.get("t")
            if t == "tensor":
                return self.tensor(v)
            if t == "host":
                return self.host_array(v)
            if t == "device":
                return None  # no device exists: calls that take one get None and say so
            if t == "device_arch":  # device.arch() of the device the mock cluster describes (a Wormhole n150)
                return ttnn.device.Arch.WORMHOLE_B0
            if t == "ref":
                return resolve(v["path"])
            if t == "construct":
                fn = resolve(v["path"])
                return fn(*[self.value(a) for a in v["args"]], **{k: self.value(a) for k, a in v["kwargs"].items()})
            if t == "list":
                return [self.value(a) for a in v["items"]]
            if t == "tuple":
                return tuple(self.value(a) for a in v["items"])
            if t == "dict":
                return {k: self.value(a) for k, a in v["items"].items()}
            if t == "float":
                return float(v["repr"])
            raise ValueError(f"unknown value kind {t!r}")
        return v


# ---------------------------------------------------------------------------------------------
# one call

def python_signature(op: str):
    """The Python function behind a Python-level ttnn op (``from_torch``, ``to_torch``), else None."""
    fn = resolve(op)
    inner = getattr(fn, "function", fn)
    if inspect.isfunction(inner):
        try:
            sig = inspect.signature(inner)
        except (TypeError, ValueError):
            return None
        if not any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values()):
            return sig
    return None


def replay_call(builder: Builder, call: dict) -> dict:
    """Run one call in this (child) process; returns its record (stage reached, message)."""
    op = call["op"]
    try:
        fn = resolve(op)
    except AttributeError as e:
        return {"status": "binding_error", "stage": "resolving the op", "message": f"ttnn has no {op}: {e}"}
    # nanobind refuses device=None (and would render every argument, whole tensors, in its message): such calls are
    # matched against the op's signatures instead, as they would be after that refusal
    by_signature = bool(call.get("takes_device")) and _device_required(op)
    saved = builder.reusable
    if not by_signature:
        builder.reusable = None
    try:
        args = [builder.value(a) for a in call["args"]]
        kwargs = {k: builder.value(a) for k, a in call["kwargs"].items()}
    except Exception as e:  # noqa: BLE001 - a name the real ttnn lacks, or an argument it cannot build
        return {"status": "binding_error", "stage": "building arguments", "message": _one(e)}
    finally:
        builder.reusable = saved
    sig = python_signature(op)
    if sig is not None:
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as e:
            return {"status": "binding_error", "stage": "Python signature", "message": _one(e)}
        if op == "from_torch":
            return _from_torch_body(bound, call)
        if op == "to_torch":
            return _to_torch_body(bound, call)
    if by_signature:
        return _bind_without_device(op, args, kwargs, "")
    try:
        fn(*args, **kwargs)
    except TypeError as e:
        if call.get("takes_device") and "incompatible function arguments" in str(e):
            return _bind_without_device(op, args, kwargs, str(e))
        return {"status": "binding_error", "stage": "nanobind overload resolution", "message": _one(e)}
    except Exception as e:  # noqa: BLE001 - TT_FATAL / TT_THROW and friends
        return _classify_failure(e, call)
    if call.get("needs_device"):
        return {"status": "ran_on_host", "stage": "ran to completion on host tensors (device path not exercised)",
                "message": ""}
    return {"status": "ok", "stage": "ran to completion", "message": ""}


def _bind_without_device(op: str, args: list, kwargs: dict, error: str) -> dict:
    """nanobind refuses ``device=None`` (and no MeshDevice can exist here): match the arguments against ttnn's own
    signatures of the op instead (names, kinds, required parameters, types by annotation), the
    device parameter taking any value.  Weaker than nanobind's own resolution, and said so in the record."""
    overloads = _nb_signatures(op) or re.findall(r"^\s*\d+\. (\w+\(.*\).*)$", error, re.M)
    why = []
    for text in overloads:
        problem = _match_signature(text, args, kwargs)
        if problem is None:
            return {"status": "needs_device", "stage": "arguments match ttnn's signature (checked by name and type; "
                    "nanobind's own resolution needs a MeshDevice)", "message": ""}
        why.append(problem)
    return {"status": "binding_error", "stage": "signature match (device absent)",
            "message": "; ".join(why) or _one(TypeError(error))}


def _device_required(op: str) -> bool:
    """Whether every nanobind overload of ``op`` takes a ``device`` that cannot be None (so that no call of it can
    bind here, where no MeshDevice exists)."""
    sigs = _nb_signatures(op)
    devices = [re.search(r"\bdevice: ([^,)=]*)", s) for s in sigs]
    return bool(sigs) and all(d is not None and "None" not in d[1] for d in devices)


def _nb_signatures(op: str) -> list[str]:
    fn = resolve(op)
    inner = getattr(fn, "function", fn)
    for cand in (getattr(type(inner), "__call__", None), inner):
        sig = getattr(cand, "__nb_signature__", None)
        if sig:
            return [s[0] for s in sig]
    return []


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "([{<"
        depth -= ch in ")]}>"
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _type_ok(value, ann: str) -> bool:
    if "MeshDevice" in ann or "IDevice" in ann:
        return True  # the stand-in for the absent device
    if value is None:
        return "None" in ann
    if isinstance(value, bool):
        return "bool" in ann
    if isinstance(value, int):
        return "int" in ann or "float" in ann
    if isinstance(value, float):
        return "float" in ann
    if isinstance(value, str):
        return "str" in ann
    if isinstance(value, (list, tuple)):
        return any(w in ann for w in ("Sequence", "tuple[", "list[", "Shape", "Array", "array"))
    return any(c.__name__ in ann for c in type(value).__mro__ if c is not object)


def _match_signature(text: str, args: list, kwargs: dict) -> str | None:
    """None if ``args``/``kwargs`` fit the nanobind signature ``text``, else what does not fit."""
    inner = text[text.index("(") + 1:]
    depth, end = 1, 0
    for end, ch in enumerate(inner):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            break
    params = [p for p in _split_top(inner[:end]) if p not in ("self", "/")]
    positional, keyword_only, star = [], [], False
    for p in params:
        if p == "*":
            star = True
            continue
        name, _, rest = p.partition(":")
        ann, _, default = rest.partition("=")
        entry = (name.strip(), ann.strip(), bool(default.strip()))
        (keyword_only if star else positional).append(entry)
    if len(args) > len(positional):
        return f"{len(args)} positional arguments, the signature takes {len(positional)}"
    given = {}
    for (name, ann, _), value in zip(positional, args):
        given[name] = (value, ann)
    table = {n: (a, d) for n, a, d in positional + keyword_only}
    for name, value in kwargs.items():
        if name not in table:
            return f"no parameter {name!r}"
        if name in given:
            return f"{name!r} given twice"
        given[name] = (value, table[name][0])
    for name, (ann, has_default) in table.items():
        if name not in given and not has_default:
            return f"missing {name!r}"
    for name, (value, ann) in given.items():
        if not _type_ok(value, ann):
            return f"{name}={type(value).__name__} does not fit {ann}"
    return None


def _from_torch_body(bound, call: dict) -> dict:
    """``ttnn.from_torch`` imports torch and then makes ``ttnn.Tensor(tensor=..., data_type=dtype, device=...,
    layout=..., mem_config=memory_config, tile=..., pad_value=...)`` (the wheel's ``operations/core.py``); here the
    host array stands in for the torch tensor in that same constructor."""
    a = bound.arguments
    try:
        mc = a.get("memory_config")
        ttnn.Tensor(a["tensor"], data_type=a.get("dtype"), device=None, layout=a.get("layout"),
                    mem_config=None if mc is not None and mc.is_sharded() else mc, tile=a.get("tile"),
                    pad_value=a.get("pad_value"))
    except TypeError as e:
        return {"status": "binding_error", "stage": "ttnn.Tensor constructor", "message": _one(e)}
    except Exception as e:  # noqa: BLE001
        return _classify_failure(e, call)
    if call.get("takes_device"):
        return {"status": "needs_device", "stage": "host conversion done; the upload (device=) needs a device",
                "message": ""}
    return {"status": "ok", "stage": "host conversion", "message": ""}


def _to_torch_body(bound, call: dict) -> dict:
    """``ttnn.to_torch``: ``from_device`` (a device read) and then the host conversion (``to_numpy`` here)."""
    try:
        bound.arguments["tensor"].to_numpy()
    except Exception as e:  # noqa: BLE001
        return _classify_failure(e, call)
    if call.get("needs_device"):
        return {"status": "needs_device", "stage": "host read-back done; from_device needs a device", "message": ""}
    return {"status": "ok", "stage": "host read-back", "message": ""}


def _one(e: BaseException) -> str:
    text = str(e).split("\nbacktrace:")[0].strip()
    text = re.sub(r"\n\s*\n", "\n", text)
    return f"{type(e).__name__}: {text}"[:1500]


def _classify_failure(e: BaseException, call: dict) -> dict:
    text = str(e)
    m = FATAL.search(text)
    if m:
        where = f"{m['where'].split('/project/')[-1]}:{m['line']}"
        cond, msg = m["cond"].strip(), (m["msg"] or "").strip()
        device = bool(DEVICE_WORDS.search(cond) or DEVICE_WORDS.search(msg)) and call.get("needs_device", True)
        return {"status": "needs_device" if device else "check_failed",
                "stage": f"stopped at {where} ({cond})", "message": msg or cond}
    return {"status": "check_failed", "stage": "raised", "message": _one(e)}


# ---------------------------------------------------------------------------------------------
# fork isolation: one forked worker replays the calls in order and streams a record per call; a call that kills it
# (an op dereferencing the absent device) is recorded from the crash report, and a new worker resumes after it

CRASH_MARK = "*** Process received signal ***"
CRASH_ADDRESS = re.compile(r"Failing at address: (?P<addr>\(nil\)|0x[0-9a-fA-F]+)")
FRAME = re.compile(r"\[\s*1\] \S+?\((?P<sym>[^)+]+)")
NULL_PAGE = 4096  # a fault below this address is a member read through a null pointer


def warm_up() -> None:
    """Make tt-metal's context before any worker forks (the first bfloat16 TILE conversion does: it reads the tile
    sizes from the mock cluster).  Every worker then inherits it, with the crash reporter it installs (the one whose
    report ``crash_record`` reads: signal, faulting address, frames); without this, a worker whose calls never
    touched the context would die silently."""
    ttnn.Tensor(np.zeros((32, 32), dtype=np.float32), data_type=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _worker(run_one, items: list, w: int) -> None:
    """The child: ``run_one`` on each item in order, one length-prefixed pickled record per item on ``w``."""
    for item in items:
        try:
            record = run_one(item)
        except BaseException as e:  # noqa: BLE001 - the harness's own error: recorded, never hidden
            record = {"status": "check_failed", "stage": "harness", "message": _one(e) + traceback.format_exc()}
        data = pickle.dumps(record)
        _write_all(w, len(data).to_bytes(8, "little") + data)
    os._exit(0)


def run_isolated(run_one, items: list, *, timeout: float = CALL_TIMEOUT_S) -> tuple[list[dict], int]:
    """``run_one(item)`` for every item, in forked workers: a worker runs items until one kills it (or gives no
    answer within ``timeout`` seconds), that item gets its crash record, and a new worker starts after it.
    Returns the records (in item order) and the number of workers forked."""
    records: list[dict] = []
    forks = 0
    while len(records) < len(items):
        rest = items[len(records):]
        sys.stdout.flush()
        sys.stderr.flush()
        r, w = os.pipe()
        er, ew = os.pipe()
        pid = os.fork()
        forks += 1
        if pid == 0:  # child
            os.close(r)
            os.close(er)
            os.dup2(ew, 2)
            _worker(run_one, rest, w)
        os.close(w)
        os.close(ew)
        got, err, timed_out = _collect(r, er, pid, len(rest), timeout)
        records += got
        if len(got) < len(rest):
            _, status = os.waitpid(pid, 0)
            records.append(crash_record(status, err, timed_out=timed_out, timeout=timeout))
        else:
            os.waitpid(pid, 0)
    return records, forks


def _collect(r: int, er: int, pid: int, expected: int, timeout: float) -> tuple[list[dict], str, bool]:
    """Read a worker's records until it ends; returns them, its stderr since its last record, and whether it was
    killed for giving no answer in time."""
    buf, err = b"", b""
    got: list[dict] = []
    fds = [r, er]
    deadline = time.monotonic() + timeout
    while fds:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, 9)
            for fd in fds:
                os.close(fd)
            return got, err.decode("utf-8", "replace"), True
        ready, _, _ = select.select(fds, [], [], left)
        for fd in ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                fds.remove(fd)
                os.close(fd)
            elif fd == er:
                err = (err + chunk)[-(1 << 20):]
            else:
                buf += chunk
                while len(buf) >= 8 and len(buf) >= 8 + int.from_bytes(buf[:8], "little"):
                    n = int.from_bytes(buf[:8], "little")
                    got.append(pickle.loads(buf[8:8 + n]))
                    buf = buf[8 + n:]
                    err = b""  # what the worker says from here on belongs to the next item
                    deadline = time.monotonic() + timeout
    return got, err.decode("utf-8", "replace"), False


def crash_record(status: int, err: str, *, timed_out: bool, timeout: float = CALL_TIMEOUT_S) -> dict:
    """The record of an item whose worker died: from the crash report that tt-metal's signal handler writes
    (``Failing at address``, then the frames; the innermost ttnn frame names the function)."""
    if timed_out:
        return {"status": "check_failed", "stage": f"no answer in {timeout:.0f} s", "message": err[-500:]}
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    if sig is None:
        return {"status": "check_failed", "stage": f"the worker exited with status {os.WEXITSTATUS(status)}",
                "message": err[-800:]}
    report = err[err.rfind(CRASH_MARK):] if CRASH_MARK in err else ""
    addr = CRASH_ADDRESS.search(report)
    frame = FRAME.search(report)
    where = _demangle(frame["sym"]) if frame else "?"
    if not report or addr is None:
        return {"status": "check_failed", "stage": f"died (signal {sig}) with no crash report",
                "message": err[-800:]}
    address = 0 if addr["addr"] == "(nil)" else int(addr["addr"], 16)
    if sig == 11 and address < NULL_PAGE:
        return {"status": "needs_device", "stage": f"entered {where}, which dereferences the (absent) device",
                "message": f"signal {sig} at address {address:#x}"}
    return {"status": "check_failed", "stage": f"died (signal {sig}) in {where} at address {address:#x}",
            "message": report[:800]}


def _demangle(sym: str) -> str:
    try:
        import subprocess
        out = subprocess.run(["c++filt", sym], capture_output=True, text=True, timeout=10).stdout.strip()
        return out.split("(")[0] or sym
    except Exception:  # noqa: BLE001 - no binutils: keep the mangled name
        return sym


# ---------------------------------------------------------------------------------------------
# modes

def replay(request: dict, blob: bytes) -> dict:
    builder = Builder(blob)
    items = list(request["calls"].items())

    builder.reusable = {}

    def one(item):
        builder.approximated = []
        t0 = time.perf_counter()
        record = replay_call(builder, item[1])
        record["seconds"] = time.perf_counter() - t0
        record["approximated"] = sorted(set(builder.approximated))
        return record

    warm_up()
    # tt-metal's context has threads now; a worker only runs host code on its one thread, and one that hangs anyway
    # is killed after CALL_TIMEOUT_S and recorded as a failure
    warnings.filterwarnings("ignore", message=r".*use of fork\(\) may lead to deadlocks", category=DeprecationWarning)
    records, forks = run_isolated(one, items)
    return {"results": {key: rec for (key, _), rec in zip(items, records)}, "workers": forks}


def numerics(request: dict, blob: bytes) -> dict:
    builder = Builder(blob)
    out = {}
    chunks = []
    offset = 0
    for case in request["cases"]:
        src = builder.host_array(case["source"])
        kwargs = {"data_type": resolve(case["dtype"]), "layout": resolve(f"{case['layout']}_LAYOUT")}
        if case.get("pad_value") is not None:
            kwargs["pad_value"] = case["pad_value"]
        try:
            t = ttnn.Tensor(src, **kwargs)
            raw = np.from_dlpack(t.host_buffer().get_shard(ttnn.MeshCoordinate(0, 0))).tobytes()
            shape, padded = list(t.shape), list(t.padded_shape)
            values = None
            if case["dtype"] in ("bfloat8_b", "bfloat4_b", "float32", "int32", "uint32"):
                values = np.ascontiguousarray(t.to_numpy()).tobytes()
        except Exception as e:  # noqa: BLE001
            out[case["name"]] = {"error": _one(e)}
            continue
        entry = {"shape": shape, "padded_shape": padded, "raw": [offset, len(raw)]}
        chunks.append(raw)
        offset += len(raw)
        if values is not None:
            entry["values"] = [offset, len(values)]
            chunks.append(values)
            offset += len(values)
        out[case["name"]] = entry
    with open(request["out_blob"], "wb") as f:
        for c in chunks:
            f.write(c)
    return {"cases": out}


def probe(request: dict, blob: bytes) -> dict:
    import importlib.util
    spec = importlib.util.spec_from_file_location("fx2ttnn_ttnn_probe", request["probe_path"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    result = module.probe_real_ttnn(open_device=True)
    return {"importable": result.module is not None, "device_opened": result.device is not None,
            "reason": result.reason, "version": getattr(result.module, "__version__", None)}


def main(argv: list[str]) -> int:
    request_path, response_path = argv[1], argv[2]
    with open(request_path) as f:
        request = json.load(f)
    blob = b""
    if request.get("blob"):
        with open(request["blob"], "rb") as f:
            blob = f.read()
    mode = request["mode"]
    t0 = time.perf_counter()
    response = {"replay": replay, "numerics": numerics, "probe": probe}[mode](request, blob)
    response["seconds"] = time.perf_counter() - t0
    response["ttnn_version"] = getattr(ttnn, "__version__", None)
    with open(response_path, "w") as f:
        json.dump(response, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
