"""Writes the .pth files the pth reader and --pretrained-weights tests read,
with PyTorch's own torch.save (Debian's python3-torch), into OUTDIR:

  efficientnet_b0.pth  torchvision's efficientnet_b0(weights=None).state_dict()
                       (the layout of the published ImageNet file)
  tiny.pth             every dtype, a view sharing its storage, a Parameter,
                       a scalar, an empty tensor
  protocol4.pth        tiny.pth's dict at pickle protocol 4
  legacy.pth           the pre-1.6 format (_use_new_zipfile_serialization=False)
  list.pth             a dict holding a list: pickle opcode EMPTY_LIST
  evil.pth             an object whose pickle calls os.system (posix.system)
  short_storage.pth    tiny.pth with one storage record 4 bytes short
  bomb.pth             tiny.pth plus a deflated 4 MB record of zeros
  truncated.pth        the first half of efficientnet_b0.pth
  expected.json        {file: {name: {dtype, shape, sha256 of the bytes}}}

Usage: /usr/bin/python3 pth_fixtures.py OUTDIR
"""
import collections
import hashlib
import json
import os
import sys
import zipfile

import torch
import torchvision

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def path(name):
    return os.path.join(out, name)


def raw_bytes(t):
    t = t.detach().contiguous()
    # numpy has no bfloat16: its bytes are read as int16.
    return (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()


def describe(state):
    return {
        name: {
            "dtype": str(t.dtype).replace("torch.", ""),
            "shape": list(t.shape),
            "sha256": hashlib.sha256(raw_bytes(t)).hexdigest(),
        }
        for name, t in state.items()
    }


expected = {}

torch.manual_seed(0)
b0 = torchvision.models.efficientnet_b0(weights=None).state_dict()
torch.save(b0, path("efficientnet_b0.pth"))
expected["efficientnet_b0.pth"] = describe(b0)

base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
tiny = collections.OrderedDict()
tiny["conv.weight"] = base
tiny["conv.weight_t"] = base.t()  # the same storage, strides (1, 4)
tiny["row"] = base[1]  # offset 4 into it
tiny["param"] = torch.nn.Parameter(torch.tensor([0.5, -1.5]))
tiny["steps"] = torch.tensor(7, dtype=torch.int64)
tiny["empty"] = torch.zeros(0, 3)
tiny["f64"] = torch.tensor([1.25, -2.5], dtype=torch.float64)
tiny["f16"] = torch.tensor([1.0, -2.0], dtype=torch.float16)
tiny["bf16"] = torch.tensor([3.0], dtype=torch.bfloat16)
tiny["i32"] = torch.tensor([1, -2, 3], dtype=torch.int32)
tiny["i16"] = torch.tensor([7, -8], dtype=torch.int16)
tiny["i8"] = torch.tensor([-1], dtype=torch.int8)
tiny["u8"] = torch.tensor([255, 0], dtype=torch.uint8)
tiny["flag"] = torch.tensor([True, False])
torch.save(tiny, path("tiny.pth"))
torch.save(tiny, path("protocol4.pth"), pickle_protocol=4)
expected["tiny.pth"] = describe(tiny)
expected["protocol4.pth"] = describe(tiny)

torch.save(b0, path("legacy.pth"), _use_new_zipfile_serialization=False)
torch.save({"w": torch.ones(2), "steps": [1, 2]}, path("list.pth"))


class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + path("evil_ran"),))


torch.save({"w": torch.ones(2), "x": Evil()}, path("evil.pth"))

# A storage record cut short: the pickle still declares the full size.
with zipfile.ZipFile(path("tiny.pth")) as src, zipfile.ZipFile(path("short_storage.pth"), "w") as dst:
    for info in src.infolist():
        data = src.read(info.filename)
        if info.filename.endswith("/data/0"):
            data = data[:-4]
        dst.writestr(info, data)

# Deflated records that expand to 4 MB in a 10 kB file (a zip bomb, small).
with zipfile.ZipFile(path("tiny.pth")) as src, zipfile.ZipFile(path("bomb.pth"), "w") as dst:
    for info in src.infolist():
        dst.writestr(info, src.read(info.filename))
    dst.writestr("tiny/extra", b"\0" * (4 << 20), compress_type=zipfile.ZIP_DEFLATED)

with open(path("efficientnet_b0.pth"), "rb") as f:
    whole = f.read()
with open(path("truncated.pth"), "wb") as f:
    f.write(whole[: len(whole) // 2])

with open(path("expected.json"), "w") as f:
    json.dump(expected, f)
