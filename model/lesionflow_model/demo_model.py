"""Build LesionFlow's offline default model: a small, UNTRAINED convolutional network in ONNX.

It exists so the whole pipeline runs with no internet and no AWS account. Its weights are random (fixed seed), so its
labels mean nothing: every record it produces names it and says it is untrained. Byte-identical on every run.

    python -m lesionflow_model.demo_model PATH
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MODEL_NAME = "lesionflow-demo-untrained-1"
DISCLAIMER = "untrained demo network with random weights: its labels are not diagnoses"
# The label names of the seed ViT (Hugging Face id2label), so the pipeline's label mapping is exercised for real.
ID2LABEL = ["actinic_keratoses", "basal_cell_carcinoma", "benign_keratosis-like_lesions", "dermatofibroma",
            "melanoma", "melanocytic_Nevi", "vascular_lesions"]
SIZE = 224
MEAN = STD = [0.5, 0.5, 0.5]  # ViT's image processor normalisation


def build(seed: int = 20261123) -> onnx.ModelProto:
    """pixel_values [N,3,224,224] -> conv/relu x2 -> global average pool -> linear -> logits [N,7]."""
    rng = np.random.default_rng(seed)

    def weight(name: str, *shape: int, scale: float) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    initializers = [
        weight("conv1_w", 8, 3, 4, 4, scale=0.3), weight("conv1_b", 8, scale=0.1),
        weight("conv2_w", 16, 8, 4, 4, scale=0.1), weight("conv2_b", 16, scale=0.1),
        weight("fc_w", len(ID2LABEL), 16, scale=1.0), weight("fc_b", len(ID2LABEL), scale=0.1),
    ]
    nodes = [
        helper.make_node("Conv", ["pixel_values", "conv1_w", "conv1_b"], ["c1"], strides=[4, 4]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "conv2_w", "conv2_b"], ["c2"], strides=[4, 4]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"]),
        helper.make_node("Gemm", ["features", "fc_w", "fc_b"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "lesionflow_demo",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(ID2LABEL)])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="lesionflow")
    model.ir_version = 8
    metadata = {"name": MODEL_NAME, "version": "1", "disclaimer": DISCLAIMER, "id2label": json.dumps(ID2LABEL),
                "image_size": str(SIZE), "image_mean": json.dumps(MEAN), "image_std": json.dumps(STD)}
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    return model


def write(path: Path, model: onnx.ModelProto | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((model or build()).SerializeToString())
    return path


if __name__ == "__main__":
    print(write(Path(sys.argv[1])))
