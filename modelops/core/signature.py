"""The signature key every export carries and every caller of the model asks for.

TF Serving's default (``tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY``), spelled out here
so that modules which must not import TensorFlow share it too.
"""

SERVING_SIGNATURE = "serving_default"

# Every export's integrated-gradients signature (modelops.trainer.model.explain): the same inputs as
# ``serving_default``; outputs one attribution per declared feature, the row's and the baseline's
# prediction of the explained class, and that class's name.
EXPLAIN_SIGNATURE = "explain"
ATTRIBUTIONS_OUTPUT = "attributions"  # [None, features] in schema order
PREDICTION_OUTPUT = "prediction"  # [None]: the explained class's probability for the row
BASELINE_OUTPUT = "baseline_prediction"  # [None]: the same for the baseline row
EXPLAINED_CLASS_OUTPUT = "explained_class"  # [None] string: the class explained (the predicted one)

# The same, for a class the caller names: ``explain``'s inputs plus ``class_index``, one per row
# (0..K-1, the label's declared order; the packed demo: 0 or 1). Absent when a feature is named ``class_index``.
EXPLAIN_CLASS_SIGNATURE = "explain_class"
CLASS_INPUT = "class_index"
