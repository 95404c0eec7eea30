"""The signature key every export carries and every caller of the model asks for.

TF Serving's default (``tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY``), spelled out here
so that modules which must not import TensorFlow share it too.
"""

SERVING_SIGNATURE = "serving_default"
