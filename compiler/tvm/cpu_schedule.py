"""Default CPU schedules: what TVM's CPU pipeline lacks without tuning.

TVM 0.27's LLVM pipeline leaves every kernel as written by legalization (one scalar loop nest,
one thread), and its dlight CPU rules cover only GEMV and softmax-like reductions. The rule
here gives every remaining kernel a parallel outer loop over its spatial axes and, for
reductions such as matmul, keeps a register tile of the output (rows x one vector of columns)
while the reduction axis runs, so the innermost, contiguous axis vectorizes.
"""
from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir import dlight
from tvm.s_tir.dlight.analysis import normalize_prim_func
from tvm.s_tir.dlight.base import try_inline

VECTOR = 16  # float32 lanes of a 512-bit register; LLVM splits it on narrower machines
ROWS = 4  # output rows kept in registers by a reduction's tile
PARALLEL_MIN = 4096  # spatial elements below which a kernel stays on one thread


def _const(expr):
    return int(expr) if isinstance(expr, tirx.IntImm | int) else None


class CpuFallback(dlight.ScheduleRule):
    """Parallel spatial loops, vectorized inner axes, register-tiled reductions.

    Args:
        rows: output rows a reduction keeps in registers.
        vector: lanes of the vectorized innermost axis.
        parallel_min: spatial elements below which a kernel stays on one thread.
    """

    def __init__(self, rows=ROWS, vector=VECTOR, parallel_min=PARALLEL_MIN):
        self.rows, self.vector, self.parallel_min = rows, vector, parallel_min

    def is_target_available(self, target) -> bool:
        return target.kind.name == "llvm"

    def apply(self, func, target, _tunable):
        if not isinstance(func, tirx.PrimFunc) or target.kind.name != "llvm":
            return None
        sch = s_tir.Schedule(func)
        infos = normalize_prim_func(sch)
        if infos is None:
            return None
        for info in try_inline(sch, infos):
            kinds = info.dom_kind()
            if any(k not in "SR" for k in kinds):
                continue
            loops = sch.get_loops(info.block_rv)
            spatial = [l for l, k in zip(loops, kinds) if k == "S"]
            reduce = [l for l, k in zip(loops, kinds) if k == "R"]
            if not spatial:
                continue
            sizes = [_const(d) for d, k in zip(info.dom(), kinds) if k == "S"]
            if reduce:
                self._reduction(sch, info.block_rv, spatial, reduce, sizes)
            else:
                self._injective(sch, spatial, sizes)
        return sch

    def _parallel_outer(self, sch, loops, sizes):
        """Fuse the outer spatial loops; run them on threads when the kernel is big enough."""
        outer = sch.fuse(*loops) if len(loops) > 1 else loops[0]
        total = 1
        for s in sizes:
            total = None if total is None or s is None else total * s
        if total is None or total >= self.parallel_min:
            sch.parallel(outer)
        return outer

    def _injective(self, sch, spatial, sizes):
        inner = sizes[-1]
        if inner is not None and inner % self.vector == 0:
            j_outer, j_inner = sch.split(spatial[-1], [None, self.vector])
            self._parallel_outer(sch, spatial[:-1] + [j_outer], sizes)
            sch.vectorize(j_inner)
        else:
            self._parallel_outer(sch, spatial, sizes)

    def _reduction(self, sch, block, spatial, reduce, sizes):
        inner = sizes[-1]
        if inner is None or inner < self.vector or len(spatial) < 2:
            sch.reorder(*spatial, *reduce)
            self._parallel_outer(sch, spatial, sizes)
            sch.decompose_reduction(block, reduce[0])
            return
        rows, cols = spatial[-2], spatial[-1]
        row_o, row_i = sch.split(rows, [None, self.rows])
        col_o, col_i = sch.split(cols, [None, self.vector])
        sch.reorder(*spatial[:-2], row_o, col_o, *reduce, row_i, col_i)
        local = sch.cache_write(block, 0, "local")
        sch.reverse_compute_at(local, col_o)
        self._parallel_outer(sch, spatial[:-2] + [row_o, col_o], sizes)
        sch.decompose_reduction(block, reduce[0])
        sch.unroll(row_i)  # the column axis is left to LLVM's vectorizer: vectorize() refuses
        sch.vectorize(sch.get_loops(local)[-1])  # a reduction block's spatial loop

