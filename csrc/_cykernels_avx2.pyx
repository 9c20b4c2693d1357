# The kernels of _cykernels.pyx, compiled a second time for x86-64 CPUs with AVX2 and FMA
# (setup.py adds -mavx2 -mfma for this module only): the same source, with 8-wide vectors and
# fused multiply-adds in the loops the compiler vectorises. fusenn.backends._cython loads this
# module where the CPU has both features, and _cykernels elsewhere.
include "_cykernels.pyx"
