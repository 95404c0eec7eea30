"""SavedModels of the kind TF Serving's own tests serve, built here rather than downloaded.

``half_plus_two`` mirrors tensorflow/serving's ``saved_model_half_plus_two`` (a ``tf.compat.v1``
graph: ``x`` is an Identity of a parsed tf.Example feature, declared ``[-1, 1]``, and is fed
directly), with several predict signatures; ``offset`` makes a second version that answers
differently. ``tf2_half_plus_two`` is the same function saved by TF2's ``tf.saved_model.save``.
``penguins`` has the signature issue 22 exports for a declared schema: one input per feature
(strings for categories, floats with NaN for a missing value), two outputs.

To run the tests that use them against a real TF Serving: ``python -m tests.localserving.saved_models DIR``
writes them and ``DIR/models.config``; start ``tensorflow_model_server --model_config_file=DIR/models.config``
(REST and gRPC on) and set ``TF_SERVING_ZOO_URL`` (and ``TF_SERVING_ZOO_GRPC``).
"""

from __future__ import annotations

from pathlib import Path


def half_plus_two(path: Path, offset: float = 2.0) -> Path:
    """serving_default: y = 0.5 x + offset; ``plus_three``: y2 = 0.5 x + 3; ``two_inputs``: x, x2 -> y, y3."""
    import tensorflow as tf

    v1 = tf.compat.v1
    with tf.Graph().as_default():
        a, b, c = v1.Variable(0.5, name="a"), v1.Variable(offset, name="b"), v1.Variable(3.0, name="c")
        serialized = v1.placeholder(tf.string, name="tf_example")
        features = v1.parse_example(serialized, {
            "x": v1.FixedLenFeature([1], dtype=tf.float32),
            "x2": v1.FixedLenFeature([1], dtype=tf.float32, default_value=[0.0]),
        })
        x, x2 = tf.identity(features["x"], name="x"), tf.identity(features["x2"], name="x2")
        y = tf.add(tf.multiply(a, x), b, name="y")
        y2 = tf.add(tf.multiply(a, x), c, name="y2")
        y3 = tf.add(tf.multiply(a, x2), c, name="y3")
        predict = v1.saved_model.signature_def_utils.predict_signature_def
        builder = v1.saved_model.Builder(str(path))
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            builder.add_meta_graph_and_variables(session, [v1.saved_model.SERVING], signature_def_map={
                "serving_default": predict({"x": x}, {"y": y}),
                "plus_three": predict({"x": x}, {"y2": y2}),
                "two_inputs": predict({"x": x, "x2": x2}, {"y": y, "y3": y3}),
            })
        builder.save()
    return path


def tf2_half_plus_two(path: Path) -> Path:
    """TF2 export: serving_default x [-1, 1] -> y = 0.5 x + 2 (and the ``__saved_model_init_op``)."""
    import tensorflow as tf

    class HalfPlusTwo(tf.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = tf.Variable(0.5), tf.Variable(2.0)

        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
        def __call__(self, x):
            return {"y": self.a * x + self.b}

    module = HalfPlusTwo()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.__call__})
    return path


ISLANDS = ("Biscoe", "Dream", "Torgersen")
SPECIES = ("Adelie", "Chinstrap", "Gentoo")
PENGUINS_SCHEMA = {  # config.json's features and label that describe the ``penguins`` export below
    "features": {"island": {"type": "category", "values": list(ISLANDS)},
                 "bill_length_mm": {"type": "float", "min": 25, "max": 70, "optional": True},
                 "sex": {"type": "category", "values": ["female", "male"], "optional": True}},
    "label": {"column": "species", "classes": list(SPECIES)},
}
PENGUIN_ROWS = [
    {"island": "Biscoe", "bill_length_mm": 39.1, "sex": "male"},
    {"island": "Dream", "bill_length_mm": 48.7, "sex": "female"},
    {"island": "Atlantis", "bill_length_mm": float("nan"), "sex": ""},  # unknown island, blanks
]


def penguins(path: Path) -> Path:
    """A named signature like a declared schema's export: ``island`` and ``sex`` (string [None]),
    ``bill_length_mm`` (float [None], NaN = missing) -> ``probabilities`` [None, 3] and ``class``
    (string [None]); a lookup table (initialised at load) maps islands, unknown ones to no island."""
    import tensorflow as tf

    class Penguins(tf.Module):
        def __init__(self):
            super().__init__()
            keys = tf.constant(ISLANDS)
            self.islands = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(keys, tf.range(len(ISLANDS), dtype=tf.int64)), len(ISLANDS)
            )
            self.species = tf.constant(SPECIES)
            self.weight = tf.Variable(2.0)

        @tf.function(input_signature=[
            tf.TensorSpec([None], tf.string, name="island"),
            tf.TensorSpec([None], tf.float32, name="bill_length_mm"),
            tf.TensorSpec([None], tf.string, name="sex"),
        ])
        def serve(self, island, bill_length_mm, sex):
            bill = tf.where(tf.math.is_nan(bill_length_mm), 40.0, bill_length_mm)
            female = tf.cast(tf.equal(sex, "female"), tf.float32)
            extra = tf.stack([bill / 50.0, female, tf.zeros_like(bill)], axis=1)
            probabilities = tf.nn.softmax(self.weight * tf.one_hot(self.islands.lookup(island), len(ISLANDS)) + extra)
            return {"probabilities": probabilities, "class": tf.gather(self.species, tf.argmax(probabilities, axis=1))}

    module = Penguins()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def write_unrunnable_warmup(export: Path) -> None:
    """A warmup file whose one record sends ``x`` of shape [1, 5]: no 2-feature model can run it."""
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    log = prediction_log_pb2.PredictionLog()
    log.predict_log.request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones((1, 5), np.float32)))
    (export / "assets.extra").mkdir(exist_ok=True)
    with tf.io.TFRecordWriter(str(export / "assets.extra" / "tf_serving_warmup_requests")) as writer:
        writer.write(log.SerializeToString())


ZOO_CONFIG = """model_config_list {{
  config {{
    name: 'half_plus_n' base_path: '{root}/half_plus_n' model_platform: 'tensorflow'
    model_version_policy {{ all {{}} }}
    version_labels {{ key: 'stable' value: 123 }}
    version_labels {{ key: 'canary' value: 124 }}
  }}
  config {{ name: 'tf2' base_path: '{root}/tf2' model_platform: 'tensorflow' }}
  config {{ name: 'penguins' base_path: '{root}/penguins' model_platform: 'tensorflow' }}
}}
"""


def write_zoo(root: Path) -> Path:
    """``half_plus_n`` (version 123: 0.5 x + 2, version 124: 0.5 x + 3, labels stable and canary) and
    ``tf2`` and ``penguins`` (version 1 each), with the ``--model_config_file`` that serves them; returns
    that file."""
    half_plus_two(root / "half_plus_n" / "123", offset=2.0)
    half_plus_two(root / "half_plus_n" / "124", offset=3.0)
    tf2_half_plus_two(root / "tf2" / "1")
    penguins(root / "penguins" / "1")
    config = root / "models.config"
    config.write_text(ZOO_CONFIG.format(root=root.resolve()))
    return config


if __name__ == "__main__":  # for a real TF Serving: python -m tests.localserving.saved_models DIR
    import sys

    print(write_zoo(Path(sys.argv[1])))
