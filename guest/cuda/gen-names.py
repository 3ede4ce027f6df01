#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""gen-names.py CUDATYPEDEFS_H CUDA_H PROC_C NM STUB_LIBCUDA OUT_C EXPORTS_C ALIASES_LD

From the CUDA toolkit's headers, OUT_C: the driver API's entry points
(cudaTypedefs.h and its siblings for the profiler, EGL, GL and VDPAU
entry points, when they are beside it, have one
PFN_<name>_v<version>[_ptds|_ptsz] typedef per entry point), as the table
proc.c searches: every name, each version it has, and a stub per entry
that reports the call as not implemented (vgpu_cuda_unimplemented()),
sorted by name, then version; and CUresult's values with their names and
the first sentence of their description (cuda.h), for cuGetErrorName and
cuGetErrorString.

From the toolkit's stub library (lib64/stubs/libcuda.so, read with NM:
it exports NVIDIA's libcuda.so.1's names), for libraries that dlsym()
the driver's names rather than ask cuGetProcAddress (cuBLAS Lt looks up
82 and fails without them):
- ALIASES_LD, an implicit linker script the shared library links with:
  other names of implemented entries, the per-thread-stream variants
  proc.c maps (its PT entries: FN_ptsz or FN_ptds for FN) and the older
  names in OLD_NAMES, whose prototypes did not change;
- EXPORTS_C, linked into the shared library only (in a static archive a
  weak name would keep the member with the real one out): each other
  exported name, a weak alias of a stub that reports it as not
  implemented; an implemented name's own definition wins over it.
Without the stub library (STUB_LIBCUDA "-") both say so and add nothing."""
import os
import re
import subprocess
import sys

PAT = re.compile(r'typedef\s+CUresult\s*\(CUDAAPI\s*\*PFN_(cu\w+?)_v(\d+)(_ptds|_ptsz)?\)')


def errors(cuda_h):
    """(value, name, first sentence) of every CUresult."""
    text = open(cuda_h, encoding='utf-8').read()
    body = text[text.index('typedef enum cudaError_enum'):text.index('} CUresult;')]
    out = []
    for m in re.finditer(r'/\*\*(.*?)\*/\s*(CUDA_\w+)\s*=\s*(\d+)', body, re.S):
        words = ' '.join(l.strip().lstrip('*').strip() for l in m.group(1).splitlines()).split()
        sentence = ' '.join(words).replace('::', '')
        sentence = sentence.split('. ')[0].rstrip('.')
        out.append((int(m.group(3)), m.group(2), sentence.replace('\\', '').replace('"', "'")))
    if len(out) < 80:
        sys.exit(f'gen-names.py: only {len(out)} CUresult values in {cuda_h}')
    return sorted(out)


# Older exported names of entries implemented under their newer name,
# with the same prototype (the handles are pointers in both ABIs; names
# whose old ABI had 32-bit device pointers or sizes stay stubs).
OLD_NAMES = {
    'cuCtxDestroy': 'cuCtxDestroy_v2',
    'cuCtxPopCurrent': 'cuCtxPopCurrent_v2',
    'cuCtxPushCurrent': 'cuCtxPushCurrent_v2',
    'cuDeviceGetUuid': 'cuDeviceGetUuid_v2',
    'cuDevicePrimaryCtxRelease': 'cuDevicePrimaryCtxRelease_v2',
    'cuDevicePrimaryCtxReset': 'cuDevicePrimaryCtxReset_v2',
    'cuDevicePrimaryCtxSetFlags': 'cuDevicePrimaryCtxSetFlags_v2',
    'cuEventDestroy': 'cuEventDestroy_v2',
    'cuGraphInstantiate': 'cuGraphInstantiate_v2',
    'cuMemHostRegister': 'cuMemHostRegister_v2',
    'cuStreamDestroy': 'cuStreamDestroy_v2',
}


def aliases(proc_c, exported):
    """{exported name: implementing function} for the per-thread variants
    proc.c serves and OLD_NAMES."""
    text = open(proc_c, encoding='utf-8').read()
    out = {}
    for fn in re.findall(r'^\s*PT\(\w+, \d+, (\w+)\)', text, re.M):
        # cuda.h names the oldest version NAME_v1 in C, NAME in the library.
        base = fn[:-3] if fn.endswith('_v1') else fn
        name = next((base + s for s in ('_ptsz', '_ptds') if base + s in exported), None)
        if name is None:
            sys.exit(f'gen-names.py: no per-thread name for {fn} in the stub library')
        out[name] = base
    for old, new in OLD_NAMES.items():
        if old in exported:
            out[old] = new
    return out


def symbols(nm, stub_lib):
    """The functions @stub_lib exports (cu*), sorted."""
    out = subprocess.run([nm, '-D', '--defined-only', stub_lib], check=True,
                         capture_output=True, text=True).stdout
    names = sorted({w[2] for w in (l.split() for l in out.splitlines())
                    if len(w) == 3 and w[1] == 'T' and re.fullmatch(r'cu\w+', w[2])})
    if len(names) < 300:
        sys.exit(f'gen-names.py: only {len(names)} functions exported by {stub_lib}')
    return names


def main():
    src, cuda_h, proc_c, nm, stub_lib, out, exports_c, aliases_ld = sys.argv[1:9]
    stub_lib = '' if stub_lib == '-' else stub_lib
    entries = set()
    base = os.path.dirname(src)
    headers = [src] + [os.path.join(base, 'cuda%sTypedefs.h' % k)
                       for k in ('Profiler', 'EGL', 'GL', 'VDPAU')]
    for header in headers:
        if not os.path.exists(header):
            continue
        with open(header, encoding='utf-8') as f:
            for line in f:
                m = PAT.search(line)
                if m:
                    entries.add((m.group(1), int(m.group(2)), 1 if m.group(3) else 0))
    entries = sorted(entries)
    if len(entries) < 300:
        sys.exit(f'gen-names.py: only {len(entries)} entry points in {src}')
    with open(out, 'w', encoding='utf-8') as f:
        f.write('/* Generated by gen-names.py from cudaTypedefs.h: do not edit. */\n')
        f.write('#include "shim.h"\n\n')
        for i in range(len(entries)):
            f.write(f'static CUresult stub{i}(void) {{ return vgpu_cuda_unimplemented({i}); }}\n')
        f.write('\nconst struct vgpu_cuda_entry vgpu_cuda_entries[] = {\n')
        for i, (name, ver, per_thread) in enumerate(entries):
            f.write(f'\t{{ "{name}", {ver}, {per_thread}, (void *)stub{i} }},\n')
        f.write('};\n')
        f.write(f'const size_t vgpu_cuda_n_entries = {len(entries)};\n')
        errs = errors(cuda_h)
        f.write('\nconst struct vgpu_cuda_error vgpu_cuda_errors[] = {\n')
        for value, name, text in errs:
            f.write(f'\t{{ {value}, "{name}", "{text}" }},\n')
        f.write('};\n')
        f.write(f'const size_t vgpu_cuda_n_errors = {len(errs)};\n')
    exported = symbols(nm, stub_lib) if stub_lib else []
    alias = aliases(proc_c, set(exported)) if stub_lib else {}
    stubs = [name for name in exported if name not in alias]
    with open(aliases_ld, 'w', encoding='utf-8') as f:
        f.write('/* Generated by gen-names.py from proc.c and the stub libcuda.so: do not edit. */\n')
        for name, fn in sorted(alias.items()):
            f.write(f'{name} = {fn};\n')
    with open(exports_c, 'w', encoding='utf-8') as f:
        f.write('/* Generated by gen-names.py from the stub libcuda.so: do not edit. */\n')
        if not stub_lib:
            f.write('/* No stub libcuda.so in the toolkit: only the implemented names are exported. */\n')
        f.write('#include <cuda.h>\n\n')
        f.write('CUresult vgpu_cuda_unexported(_Atomic unsigned char *told, const char *name); /* shim.h */\n')
        if stubs:
            f.write(f'static _Atomic unsigned char told[{len(stubs)}];\n')
        for i, name in enumerate(stubs):
            f.write(f'__attribute__((used)) static CUresult elf{i}(void) '
                    f'{{ return vgpu_cuda_unexported(&told[{i}], "{name}"); }}\n')
            f.write(f'__asm__(".weak {name}\\n.type {name}, @function\\n.set {name}, elf{i}");\n')


main()
