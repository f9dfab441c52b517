#!/usr/bin/env bash
# One line naming this machine as docs/BENCHMARKS.md wants it: the date, the
# CPU model, its cores, and whether it has AMX, AVX-512 BF16 and AVX2 (the
# flags that decide which kernels oneDNN and OpenBLAS run), plus any
# variable that holds the kernels below what the CPU has.
flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { case " $flags " in *" $1 "*) echo yes ;; *) echo no ;; esac; }
model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)
limits=""
for v in ONEDNN_MAX_CPU_ISA DNNL_MAX_CPU_ISA OPENBLAS_CORETYPE ATEN_CPU_CAPABILITY; do
  [ -n "${!v:-}" ] && limits+=" $v=${!v}"
done
echo "# $(date -u +%F) ${model}, $(nproc) cores; AMX $(has amx_bf16), AVX-512 BF16 $(has avx512_bf16), AVX2 $(has avx2)${limits:+; kernels held:$limits}"
