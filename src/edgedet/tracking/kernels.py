"""The tracker's per-frame work as a few compiled loops (numba), for `SortTracker`'s fast path.

Each function here does, element by element, the same floating-point operations in the same order as the numpy
path of `tracking.sort` / `tracking.kalman` / `tracking.assignment` (the comments name the numpy line each
mirrors), so both paths produce the same tracks: tests/tracking/test_replay_golden.py runs against both, and
tests/tracking/test_kernels.py compares them frame by frame. The one difference is the predict step, which the
numpy path does as one matrix product (BLAS may fuse multiply-adds); here it is written out term by term. The
two agree to a few units in the last place and give the same tracks on every golden sequence.

numba is optional (`pip install "edgedet[fast]"`): without it this module still imports (`NUMBA` is False and
the functions stay plain Python, usable but slow), and `SortTracker` uses the numpy path. Compiled by
`_optional.numba_jit` (cached: the first process on a machine compiles, about a few seconds; later ones load
from the cache; numpy's error model: 0/0 gives NaN as in numpy, and NaN boxes are SORT's lost filters).

Shapes and dtypes are the tracker's own (all C-contiguous): state (T, 20) float64 (see kalman.BoxKalmanFilter),
count (T, 2) int64, ids/cls (T,) int32, conf (T,) float32, last (T,) float64, confirmed (T,) bool; detections
xyxy (D, 4) float32, conf (D,) float32, class (D,) int32. `prm` (32,) float64 packs the filter constants:
a new track's state row (20), then qa (4), qc (4) and R (4) of kalman.BoxKalmanFilter.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgedet._kernel_ops import maximum as _max
from edgedet._kernel_ops import nonpositive as _min0
from edgedet._optional import available
from edgedet._optional import numba_jit as _jit

NUMBA = available("numba")


@_jit
def predict(state: Any, dt: float, prm: Any) -> Any:
    """In place: BoxKalmanFilter.predict(dt) (dt >= 0). Returns the (T, 4) negated predicted boxes
    (kalman.neg_boxes_of) and the number of tracks whose box is not finite (SORT drops those)."""
    n = state.shape[0]
    if dt == 0.0:
        for i in range(n):
            if state[i, 6] * dt + state[i, 2] <= 0:
                state[i, 6] = 0.0
    else:
        dt2 = 2.0 * dt
        dtt = dt * dt
        for i in range(n):
            # SORT's guard: an area about to go non-positive stops shrinking (exact test on the old state)
            if state[i, 6] * dt + state[i, 2] <= 0:
                state[i, 6] = 0.0
            for p in range(4):
                # state @ G + h, G's nonzero terms in column order
                state[i, p] = state[i, p] + state[i, 4 + p] * dt
                a = state[i, 8 + p] + state[i, 12 + p] * dt2
                a = a + state[i, 16 + p] * dtt
                state[i, 8 + p] = a + prm[20 + p] * dt
                state[i, 12 + p] = state[i, 12 + p] + state[i, 16 + p] * dt
                state[i, 16 + p] = state[i, 16 + p] + prm[24 + p] * dt
    boxes = np.empty((n, 4))
    bad = 0
    for i in range(n):
        w = np.sqrt(state[i, 2] * state[i, 3])
        hw = w * -0.5
        hh = (state[i, 2] / w) * -0.5
        cx = state[i, 0]
        cy = state[i, 1]
        boxes[i, 0] = cx + hw
        boxes[i, 1] = cy + hh
        boxes[i, 2] = hw - cx
        boxes[i, 3] = hh - cy
        for k in range(4):
            if not np.isfinite(boxes[i, k]):
                bad += 1
                break
    return boxes, bad


@_jit
def neg_dets(xyxy: Any) -> Any:
    """(D, 4) float32 boxes -> ((D, 4) negated float64, (D,) areas): `det_all * NEGATE`, `neg_areas`."""
    n = xyxy.shape[0]
    neg = np.empty((n, 4))
    area = np.empty(n)
    for j in range(n):
        x1 = np.float64(xyxy[j, 0])
        y1 = np.float64(xyxy[j, 1])
        nx2 = -np.float64(xyxy[j, 2])
        ny2 = -np.float64(xyxy[j, 3])
        neg[j, 0] = x1
        neg[j, 1] = y1
        neg[j, 2] = nx2
        neg[j, 3] = ny2
        area[j] = _min0(nx2 + x1) * _min0(ny2 + y1)
    return neg, area


@_jit
def trk_areas(boxes: Any) -> Any:
    """assignment.neg_areas of the tracks' negated boxes."""
    n = boxes.shape[0]
    area = np.empty(n)
    for i in range(n):
        area[i] = _min0(boxes[i, 2] + boxes[i, 0]) * _min0(boxes[i, 3] + boxes[i, 1])
    return area


@_jit
def gate(
    det_neg: Any,
    det_area: Any,
    didx: Any,
    trk_neg: Any,
    trk_area: Any,
    tidx: Any,
    thr: float,
    det_cls: Any,
    trk_cls: Any,
    class_aware: bool,
) -> Any:
    """The gated IoU matrix of detections `didx` with tracks `tidx` (assignment.iou_neg, then
    match_gated's `np.where(iou >= thr, iou, 0)`), and its matching when it is trivially unambiguous.

    Returns (gated (D', T'), rows, cols, trivial). trivial: every row and every column has at most one
    positive entry; then (rows, cols) are those entries, rows ascending, which is exactly the set of pairs
    `match_gated` keeps (the optimum must take every positive entry, and there is no other). Otherwise rows
    and cols are empty and the caller solves `gated` with linear_sum_assignment.
    """
    nd = didx.shape[0]
    nt = tidx.shape[0]
    g = np.zeros((nd, nt))
    col_hits = np.zeros(nt, np.int64)
    rows = np.empty(min(nd, nt), np.intp)
    cols = np.empty(min(nd, nt), np.intp)
    k = 0
    trivial = True
    for r in range(nd):
        j = didx[r]
        dx1 = det_neg[j, 0]
        dy1 = det_neg[j, 1]
        dx2 = det_neg[j, 2]
        dy2 = det_neg[j, 3]
        da = det_area[j]
        row_hits = 0
        for c in range(nt):
            i = tidx[c]
            if class_aware and det_cls[j] != trk_cls[i]:
                continue  # iou set to 0: never passes a positive threshold
            sx = _min0(_max(dx2, trk_neg[i, 2]) + _max(dx1, trk_neg[i, 0]))
            sy = _min0(_max(dy2, trk_neg[i, 3]) + _max(dy1, trk_neg[i, 1]))
            inter = sx * sy
            union = (da + trk_area[i]) - inter
            iou = inter / union
            if iou >= thr:
                g[r, c] = iou
                if iou > 0.0:
                    row_hits += 1
                    col_hits[c] += 1
                    if row_hits > 1 or col_hits[c] > 1:
                        trivial = False
                    elif trivial:
                        rows[k] = r
                        cols[k] = c
                        k += 1
    if not trivial:
        k = 0
    return g, rows[:k].copy(), cols[:k].copy(), trivial


@_jit
def high_low(conf: Any, score_thr: Any, low_thr: Any) -> Any:
    """(high, low): detections with conf >= score_thr, and low_thr <= conf < score_thr (float32 compares,
    as numpy compares a float32 array with a Python float)."""
    n = conf.shape[0]
    hi = np.empty(n, np.intp)
    lo = np.empty(n, np.intp)
    nh = 0
    nl = 0
    for j in range(n):
        c = conf[j]
        if c >= score_thr:
            hi[nh] = j
            nh += 1
        elif c >= low_thr:
            lo[nl] = j
            nl += 1
    return hi[:nh].copy(), lo[:nl].copy()


@_jit
def z_rows(xyxy: Any, rows: Any) -> Any:
    """kalman.z_of of detections `rows` of (D, 4) float32 boxes: (M, 4) float64 [cx, cy, s, r]."""
    z = np.empty((rows.shape[0], 4))
    for k in range(rows.shape[0]):
        j = rows[k]
        x1 = np.float64(xyxy[j, 0])
        y1 = np.float64(xyxy[j, 1])
        w = np.float64(xyxy[j, 2]) - x1
        h = np.float64(xyxy[j, 3]) - y1
        z[k, 0] = x1 + w * 0.5
        z[k, 1] = y1 + h * 0.5
        z[k, 2] = w * h
        z[k, 3] = w / h
    return z


@_jit
def update(state: Any, idx: Any, z: Any, prm: Any) -> None:
    """In place: BoxKalmanFilter.update_rows(idx, z), track idx[k] corrected with measurement z[k]."""
    for k in range(idx.shape[0]):
        i = idx[k]
        for p in range(4):
            # update_rows: ar = a + R; k = [a, b] / ar; y = z - x; x, v += k y; c -= k2 b; a, b = k R
            a = state[i, 8 + p]
            b = state[i, 12 + p]
            ar = a + prm[28 + p]
            k1 = a / ar
            k2 = b / ar
            y = z[k, p] - state[i, p]
            state[i, p] += k1 * y
            state[i, 4 + p] += k2 * y
            state[i, 16 + p] -= k2 * b
            state[i, 8 + p] = k1 * prm[28 + p]
            state[i, 12 + p] = k2 * prm[28 + p]


@_jit
def first_pass(
    state: Any,
    dt: float,
    prm: Any,
    det_xyxy: Any,
    det_conf: Any,
    score_thr: Any,
    low_thr: Any,
    iou_thr: float,
    det_cls: Any,
    trk_cls: Any,
    class_aware: bool,
) -> Any:
    """`predict`, the detections' negated boxes and areas, `high_low`, the tracks' areas and the first
    association's `gate` (high detections with every track) in one call.

    Returns (trk_neg, bad, det_neg, det_area, trk_area, high, low, gated, rows, cols, trivial). When `bad`
    > 0 the caller drops the tracks with non-finite boxes and gates again; the gate here is then skipped
    (empty).
    """
    trk_neg, bad = predict(state, dt, prm)
    det_neg, det_area = neg_dets(det_xyxy)
    high, low = high_low(det_conf, score_thr, low_thr)
    trk_area = trk_areas(trk_neg)
    if bad:
        empty = np.zeros(0, np.intp)
        return (trk_neg, bad, det_neg, det_area, trk_area, high, low, np.zeros((0, 0)), empty, empty, True)
    tidx = np.arange(trk_neg.shape[0])
    g, rows, cols, trivial = gate(
        det_neg, det_area, high, trk_neg, trk_area, tidx, iou_thr, det_cls, trk_cls, class_aware
    )
    return trk_neg, bad, det_neg, det_area, trk_area, high, low, g, rows, cols, trivial


@_jit
def second_pass(
    trk_neg: Any,
    trk_area: Any,
    count: Any,
    t: Any,
    det_neg: Any,
    det_area: Any,
    low: Any,
    iou_thr: float,
    det_cls: Any,
    trk_cls: Any,
    class_aware: bool,
) -> Any:
    """ByteTrack's second association: the pool of tracks matched on the previous detector frame and not
    matched now, and `gate` of the `low` detections with it. Returns (pool, gated, rows, cols, trivial),
    rows/cols local to low/pool."""
    n = count.shape[0]
    free = np.empty(n, np.bool_)
    for i in range(n):
        free[i] = count[i, 1] == 0
    for k in range(t.shape[0]):
        free[t[k]] = False
    pool = np.flatnonzero(free)
    g, rows, cols, trivial = gate(
        det_neg, det_area, low, trk_neg, trk_area, pool, iou_thr, det_cls, trk_cls, class_aware
    )
    return pool, g, rows, cols, trivial


@_jit
def finish(
    state: Any,
    count: Any,
    ids: Any,
    cls: Any,
    conf: Any,
    last: Any,
    confirmed: Any,
    det_xyxy: Any,
    det_conf: Any,
    det_cls: Any,
    d: Any,
    t: Any,
    high: Any,
    rows1: Any,
    new_thr: Any,
    ts: float,
    min_hits: int,
    keep_confirmed: bool,
    next_id: int,
    limit: float,
    report_lost: float,
    report_lim: float,
    warmup: bool,
    prm: Any,
) -> Any:
    """Everything `SortTracker._update` does after association: the Kalman update of matched tracks
    (BoxKalmanFilter.update_rows), counters, class/confidence/time of matched tracks, confirmation, new
    tracks from the `high` detections the first pass left (`rows1`: its matched rows of `high`) that score at
    least `new_thr` (float32; -inf for none), expiry (`_expire`), and the report
    (`_report(after_update=True)`).

    Returns (state, count, ids, cls, conf, last, confirmed, out_xyxy, out_conf, out_cls, out_ids, started):
    new arrays for the tracker (the inputs are changed in place as well), the reported tracks' arrays and the
    number of tracks started (their ids are next_id, next_id + 1, ...).
    """
    n = state.shape[0]
    m = d.shape[0]
    update(state, t, z_rows(det_xyxy, d), prm)
    if n:
        matched = np.zeros(n, np.bool_)
        for k in range(m):
            matched[t[k]] = True
        for i in range(n):
            if matched[i]:
                count[i, 0] += 1
                count[i, 1] = 0
            else:
                count[i, 0] = 0
                count[i, 1] += 1
        for k in range(m):
            i = t[k]
            cls[i] = det_cls[d[k]]
            conf[i] = det_conf[d[k]]
            last[i] = ts
        for i in range(n):
            now = count[i, 0] >= min_hits
            confirmed[i] = (confirmed[i] or now) if keep_confirmed else now

    # new tracks (ascending detection order), then expiry: one copy into the arrays kept
    taken = np.zeros(high.shape[0], np.bool_)
    for k in range(rows1.shape[0]):
        taken[rows1[k]] = True
    starts_from = np.empty(high.shape[0], np.intp)
    ns = 0
    for k in range(high.shape[0]):
        if not taken[k] and det_conf[high[k]] >= new_thr:
            starts_from[ns] = high[k]
            ns += 1
    total = n + ns
    keep = np.ones(total, np.bool_)
    kept = total
    if total:
        oldest = ts
        for i in range(n):
            if last[i] < oldest:
                oldest = last[i]
        if ts - oldest > limit:
            for i in range(n):
                if not (ts - last[i] <= limit):
                    keep[i] = False
                    kept -= 1
            # new tracks were matched now: ts - ts = 0 <= limit
    s2 = np.empty((kept, 20))
    c2 = np.empty((kept, 2), np.int64)
    ids2 = np.empty(kept, np.int32)
    cls2 = np.empty(kept, np.int32)
    conf2 = np.empty(kept, np.float32)
    last2 = np.empty(kept, np.float64)
    conf_ok2 = np.empty(kept, np.bool_)
    o = 0
    for i in range(n):
        if keep[i]:
            s2[o] = state[i]
            c2[o, 0] = count[i, 0]
            c2[o, 1] = count[i, 1]
            ids2[o] = ids[i]
            cls2[o] = cls[i]
            conf2[o] = conf[i]
            last2[o] = last[i]
            conf_ok2[o] = confirmed[i]
            o += 1
    z_new = z_rows(det_xyxy, starts_from[:ns])
    for q in range(ns):
        j = starts_from[q]
        # BoxKalmanFilter.initiate: the new-track row with z in front
        for col in range(20):
            s2[o, col] = prm[col]
        for col in range(4):
            s2[o, col] = z_new[q, col]
        c2[o, 0] = 0
        c2[o, 1] = 0
        ids2[o] = next_id + q
        cls2[o] = det_cls[j]
        conf2[o] = det_conf[j]
        last2[o] = ts
        conf_ok2[o] = min_hits == 0
        o += 1
    ox, oc, ocl, oid = report(
        s2, c2, ids2, cls2, conf2, last2, conf_ok2, ts, report_lost, report_lim, warmup, True
    )
    return s2, c2, ids2, cls2, conf2, last2, conf_ok2, ox, oc, ocl, oid, ns


@_jit
def expire(last: Any, ts: float, limit: float) -> Any:
    """`_expire`'s keep mask, or an empty array when every track stays (the usual case)."""
    n = last.shape[0]
    if n == 0:
        return np.zeros(0, np.bool_)
    oldest = last[0]
    for i in range(n):
        if last[i] < oldest:
            oldest = last[i]
    if not (ts - oldest > limit):
        return np.zeros(0, np.bool_)
    keep = np.empty(n, np.bool_)
    for i in range(n):
        keep[i] = ts - last[i] <= limit
    return keep


@_jit
def report(
    state: Any,
    count: Any,
    ids: Any,
    cls: Any,
    conf: Any,
    last: Any,
    confirmed: Any,
    ts: float,
    report_lost: float,
    report_lim: float,
    warmup: bool,
    after_update: bool,
) -> Any:
    """`SortTracker._report`: (xyxy float32, conf, class, ids) of the tracks shown, in track order."""
    n = state.shape[0]
    show = np.empty(n, np.bool_)
    k = 0
    for i in range(n):
        recent = ts - last[i] <= report_lim
        if after_update and report_lost > 0 and not warmup:
            s = recent and confirmed[i]
        else:
            current = count[i, 1] == 0
            if report_lost > 0:
                shown = current or recent
                s = (current or (shown and confirmed[i])) if warmup else (shown and confirmed[i])
            else:
                s = current if warmup else (current and confirmed[i])
        show[i] = s
        if s:
            k += 1
    xyxy = np.empty((k, 4), np.float32)
    oc = np.empty(k, np.float32)
    ocl = np.empty(k, np.int32)
    oid = np.empty(k, np.int32)
    o = 0
    for i in range(n):
        if show[i]:
            # kalman.boxes_of, then astype(float32)
            w = np.sqrt(state[i, 2] * state[i, 3])
            hw = w * 0.5
            hh = (state[i, 2] / w) * 0.5
            cx = state[i, 0]
            cy = state[i, 1]
            xyxy[o, 0] = np.float32(cx - hw)
            xyxy[o, 1] = np.float32(cy - hh)
            xyxy[o, 2] = np.float32(hw + cx)
            xyxy[o, 3] = np.float32(hh + cy)
            oc[o] = conf[i]
            ocl[o] = cls[i]
            oid[o] = ids[i]
            o += 1
    return xyxy, oc, ocl, oid


@_jit
def inside_frame(xyxy: Any, conf: Any, cls: Any, tid: Any, frame_h: int, frame_w: int) -> Any:
    """tracking.inside_frame's numpy path: boxes clipped to [0, w] x [0, h] in float32 (np.clip), rows left
    with no width or height (or NaN) dropped. Returns the four Detections arrays, new."""
    n = xyxy.shape[0]
    fw = np.float32(frame_w)
    fh = np.float32(frame_h)
    zero = np.float32(0.0)
    box = np.empty((n, 4), np.float32)
    rows = np.empty(n, np.int64)
    k = 0
    for i in range(n):
        for j in range(4):
            v = xyxy[i, j]
            hi = fw if j % 2 == 0 else fh
            if v < zero:
                v = zero
            elif v > hi:
                v = hi
            box[k, j] = v
        if box[k, 2] > box[k, 0] and box[k, 3] > box[k, 1]:
            rows[k] = i
            k += 1
    out_conf = np.empty(k, np.float32)
    out_cls = np.empty(k, np.int32)
    out_tid = np.empty(k, np.int32)
    for r in range(k):
        out_conf[r] = conf[rows[r]]
        out_cls[r] = cls[rows[r]]
        out_tid[r] = tid[rows[r]]
    return box[:k].copy(), out_conf, out_cls, out_tid
