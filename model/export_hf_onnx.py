"""Export a Hugging Face image classifier to the ONNX file LesionFlow's model server serves.

Needs internet (the Hub), torch and transformers; run it where you have them, not in the pipeline:

    pip install torch transformers onnx
    python model/export_hf_onnx.py Anwarkh1/Skin_Cancer_Image_Classification build/model.onnx
    tar -czf build/model.tar.gz -C build model.onnx      # upload for EndpointSource=artifact

The file carries what the server reads as ONNX metadata: ``id2label`` (the model's class order), ``image_size``,
``image_mean``, ``image_std`` (from the model's image processor), ``name`` and ``version`` (the Hub id and revision).
"""

import argparse
import json
from pathlib import Path


def export(model_id: str, output: Path, revision: str = "main") -> Path:
    import onnx
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(model_id, revision=revision).eval()
    processor = AutoImageProcessor.from_pretrained(model_id, revision=revision)
    size = processor.size.get("height") or processor.size.get("shortest_edge")

    class Logits(torch.nn.Module):  # ONNX wants tensors out, not a ModelOutput
        def forward(self, pixel_values):
            return model(pixel_values=pixel_values).logits

    output.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(Logits(), torch.zeros(1, 3, size, size), str(output), input_names=["pixel_values"],
                      output_names=["logits"], dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=17)
    exported = onnx.load(str(output))
    labels = [model.config.id2label[index] for index in range(len(model.config.id2label))]
    metadata = {"name": model_id, "version": revision, "id2label": json.dumps(labels), "image_size": str(size),
                "image_mean": json.dumps(list(processor.image_mean)), "image_std": json.dumps(list(processor.image_std))}
    onnx.helper.set_model_props(exported, metadata)
    onnx.save(exported, str(output))
    return output


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_id")
    parser.add_argument("output", type=Path)
    parser.add_argument("--revision", default="main")
    arguments = parser.parse_args()
    print(export(arguments.model_id, arguments.output, arguments.revision))
