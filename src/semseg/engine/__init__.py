"""The training, evaluation and inference machinery behind the public functions (train,
evaluate, calibrate, score, load, predict_folder) and the command line."""
