# SPDX-License-Identifier: MIT
"""nvml_check.py - what a program asking NVML (as pynvml and PyTorch do,
through ctypes) gets from a libnvidia-ml.so.1: vgpu's, on the scripted
host (test-cuda-shim.sh) or on the GPU machine, or NVIDIA's there, for
comparison. One line per question: the NVML status, then the answers.

  python3 nvml_check.py LIBRARY"""
import ctypes
import sys

lib = ctypes.CDLL(sys.argv[1])


class Pci(ctypes.Structure):
    _fields_ = [("busIdLegacy", ctypes.c_char * 16), ("domain", ctypes.c_uint),
                ("bus", ctypes.c_uint), ("device", ctypes.c_uint),
                ("pciDeviceId", ctypes.c_uint), ("pciSubSystemId", ctypes.c_uint),
                ("busId", ctypes.c_char * 32)]


class Memory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong),
                ("used", ctypes.c_ulonglong)]


class MemoryV2(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint), ("total", ctypes.c_ulonglong),
                ("reserved", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong),
                ("used", ctypes.c_ulonglong)]


MEMORY_V2 = ctypes.sizeof(MemoryV2) | 2 << 24
lib.nvmlErrorString.restype = ctypes.c_char_p
u = ctypes.c_uint()
h = ctypes.c_void_p()
buf = ctypes.create_string_buffer(96)
print("init", lib.nvmlInit_v2())
print("count", lib.nvmlDeviceGetCount_v2(ctypes.byref(u)), u.value)
n = u.value
for i in range(n):
    print("handle", i, lib.nvmlDeviceGetHandleByIndex_v2(i, ctypes.byref(h)))
    st = lib.nvmlDeviceGetName(h, buf, 96)
    print("name", i, st, buf.value.decode())
    st = lib.nvmlDeviceGetUUID(h, buf, 96)
    uuid = buf.value
    print("uuid", i, st, uuid.decode())
    pci = Pci()
    st = lib.nvmlDeviceGetPciInfo_v3(h, ctypes.byref(pci))
    print("pci", i, st, pci.busId.decode(), pci.busIdLegacy.decode(), pci.domain, pci.bus,
          pci.device)
    major, minor = ctypes.c_int(), ctypes.c_int()
    st = lib.nvmlDeviceGetCudaComputeCapability(h, ctypes.byref(major), ctypes.byref(minor))
    print("cc", i, st, major.value, minor.value)
    m = Memory()
    st = lib.nvmlDeviceGetMemoryInfo(h, ctypes.byref(m))
    print("memory", i, st, m.total, m.free, m.used)
    m2 = MemoryV2(version=MEMORY_V2)
    st = lib.nvmlDeviceGetMemoryInfo_v2(h, ctypes.byref(m2))
    print("memory-v2", i, st, m2.total == m.total, m2.free + m2.used == m2.total)
    back = ctypes.c_void_p()
    st = lib.nvmlDeviceGetHandleByUUID(uuid, ctypes.byref(back))
    st2 = lib.nvmlDeviceGetHandleByPciBusId_v2(pci.busIdLegacy, ctypes.byref(back))
    st3 = lib.nvmlDeviceGetIndex(back, ctypes.byref(u))
    print("by-uuid-pci", i, st, st2, st3, "same" if back.value == h.value and u.value == i
          else "different")
version = ctypes.c_int()
print("cuda-version", lib.nvmlSystemGetCudaDriverVersion_v2(ctypes.byref(version)),
      version.value)
if n:
    lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(h))
    bad = [lib.nvmlDeviceGetHandleByIndex_v2(n, ctypes.byref(h)),       # past the count
           lib.nvmlDeviceGetCount_v2(None),                              # no pointer
           lib.nvmlDeviceGetName(ctypes.c_void_p(8), buf, 96),          # not a handle
           lib.nvmlDeviceGetName(h, buf, 4),                             # too small
           lib.nvmlDeviceGetHandleByUUID(b"GPU-nope", ctypes.byref(h)),  # no such
           lib.nvmlDeviceGetHandleByPciBusId_v2(b"zz:1", ctypes.byref(h)),
           lib.nvmlDeviceGetMemoryInfo_v2(h, ctypes.byref(MemoryV2(version=1))),
           lib.nvmlInitWithFlags(8)]                                      # unknown flag
    print("bad", *bad)
print("shutdown", lib.nvmlShutdown(), lib.nvmlShutdown(),
      lib.nvmlDeviceGetCount_v2(ctypes.byref(u)))
print("error-string", lib.nvmlErrorString(9).decode())
