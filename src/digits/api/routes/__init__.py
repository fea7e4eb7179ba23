"""One module per protocol, each route declared with its decorator where a reader looks for it:
`predict` (POST /predict), `v2` (Open Inference Protocol), `tfserving` (TensorFlow Serving REST),
`health` (health, /info, /metrics) and `pages` (the drawing page, offline API docs)."""
