"""Accuracy metrics through well-kept libraries: detection mAP (pycocotools) and MOT metrics (TrackEval, py-motmetrics)."""
