"""Training: fitted models and their fast-inference ONNX copies.

``convert(model, sample)`` makes an ONNX copy of a fitted scikit-learn, LightGBM or XGBoost model (or
records why it cannot), ``check_parity(model, onnx_bytes, X_test)`` proves the copy answers like the
model on a test set, and ``OnnxModel(onnx_bytes)`` serves it with ``predict`` / ``predict_proba``.
"""

from ._onnx import Conversion, InputColumn, InputSpec, OnnxModel, Parity, check_parity, convert

__all__ = [
    "Conversion",
    "InputColumn",
    "InputSpec",
    "OnnxModel",
    "Parity",
    "check_parity",
    "convert",
]
