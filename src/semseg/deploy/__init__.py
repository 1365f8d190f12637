"""Shipping a trained model: ONNX export with a parity check, shareable model folders
(safetensors + config + model card, the Hugging Face Hub layout), loading any of them,
and the prediction server with its page."""
