"""The paper's reported numbers (the headline numbers a reproduction should match), keyed by model name.

Only the paper study (``config/studies/paper.yaml``) runs these models; the claims report
compares its results with these numbers, and the accuracy figure marks them.
"""

from __future__ import annotations

STUDY = "paper"
LLAMA, VICUNA, GOAT, FLOAT = "llama-7b", "vicuna-7b", "goat-7b", "float-7b"
MODELS = (LLAMA, VICUNA, GOAT, FLOAT)
NAMES = {LLAMA: "Llama-7B", VICUNA: "Vicuna-7B", GOAT: "Goat-7B", FLOAT: "FLoat-7B"}
PUBLISHED_LLAMA = "published-llama"  # the original's Llama circuit, evaluated as an external circuit

# circuit_eval.ipynb: task accuracy on the first 500 records
ACCURACY = {LLAMA: 0.66, VICUNA: 0.67, GOAT: 0.82, FLOAT: 0.82}
# results/circuits/*_circuit.json: circuit sizes per group (value fetcher, position transmitter, position
# detector, structure reader)
CIRCUIT_SIZES = {LLAMA: (40, 7, 20, 5), GOAT: (68, 28, 40, 39), FLOAT: (68, 29, 40, 38)}
# circuit_eval.ipynb: the Llama circuit on each model: circuit accuracy, faithfulness, random-circuit accuracy
LLAMA_CIRCUIT_ACCURACY = {LLAMA: 0.66, VICUNA: 0.65, GOAT: 0.73, FLOAT: 0.72}
LLAMA_CIRCUIT_FAITHFULNESS = {LLAMA: 1.00, VICUNA: 0.97, GOAT: 0.89, FLOAT: 0.88}
RANDOM_CIRCUIT_ACCURACY = {LLAMA: 0.00, VICUNA: 0.00, GOAT: 0.01, FLOAT: 0.01}
# circuit_eval.ipynb @b4c3180: the Goat circuit; its fourth model was the pre-upload FLoat ("naive" fine-tune)
GOAT_CIRCUIT_ACCURACY = {LLAMA: 0.77, VICUNA: 0.76, GOAT: 0.81, FLOAT: 0.79}
GOAT_CIRCUIT_FAITHFULNESS = {LLAMA: 1.17, VICUNA: 1.13, GOAT: 0.99, FLOAT: 0.96}
# completeness.ipynb: completeness, mean |F(C minus K) - F(M minus K)| over random K
COMPLETENESS = {LLAMA: 0.10, GOAT: 0.06, FLOAT: 0.09}
# results/path_patching/llama_circuit/*.pt: Llama's strongest head per path-patching stage and its score (metric prob)
STRONGEST_HEAD = {
    "value_fetcher": ((15, 13), -0.0848),
    "pos_transmitter": ((14, 27), -0.3263),
    "pos_detector": ((10, 3), -0.2561),
    "struct_reader": ((8, 21), -0.1012),
}
# results/DCM/llama_circuit/*/*/0.01.txt: DCM test accuracy of the Llama circuit,
# (group, desideratum) -> (selected heads, accuracy)
DCM_LLAMA = {
    ("value_fetcher", "object_value"): (40, 0.468),
    ("pos_transmitter", "positional"): (5, 0.362),
    ("pos_detector", "positional"): (14, 0.412),
    ("struct_reader", "positional"): (3, 0.140),
}
# activation_patching.py's results: activation patching of the Llama circuit's DCM heads, accuracy in percent
ACTIVATION_PATCHING = {
    ("value_fetcher", "object_value"): {LLAMA: 45.6, GOAT: 65.9, FLOAT: 63.3},
    ("pos_transmitter", "positional"): {LLAMA: 36.9, GOAT: 38.6, FLOAT: 47.1},
    ("pos_detector", "positional"): {LLAMA: 44.0, GOAT: 44.2, FLOAT: 54.7},
}
# cmap.ipynb (markdown cells): CMAP, fine-tuned -> Llama, accuracy after patching each group (and the full circuit)
CMAP = {
    GOAT: {"struct_reader": 0.65, "pos_detector": 0.62, "pos_transmitter": 0.78, "value_fetcher": 0.82, "full": 0.82},
    FLOAT: {"struct_reader": 0.65, "pos_detector": 0.56, "pos_transmitter": 0.74, "value_fetcher": 0.82, "full": 0.82},
}
# attn_knockout/results: attention knockout last token -> correct object, Llama; accuracy by first knocked-out layer
KNOCKOUT_LAST_TO_OBJECT = {0: 0.04, 31: 0.65}
# attn_knockout/results: Llama's knockout curves, accuracy by first knocked-out layer s = 0..31 (the original's
# key s + 1); the random-position controls were reported as ranges only (0.62-0.66 and 0.61-0.66).
# fmt: off
KNOCKOUT_CURVES = {
    "last_to_correct_object": [
        0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.04,
        0.06, 0.07, 0.07, 0.13, 0.21, 0.25, 0.41, 0.41, 0.56, 0.60, 0.61, 0.61, 0.61, 0.63, 0.65, 0.65,
    ],
    "last_to_query_label": [
        0.37, 0.36, 0.36, 0.36, 0.36, 0.36, 0.37, 0.37, 0.37, 0.36, 0.35, 0.39, 0.51, 0.55, 0.55, 0.65,
        0.65, 0.66, 0.66, 0.66, 0.66, 0.66, 0.65, 0.65, 0.65, 0.65, 0.66, 0.66, 0.66, 0.65, 0.66, 0.65,
    ],
    "query_label_to_prev_query_label": [
        0.05, 0.05, 0.09, 0.09, 0.09, 0.13, 0.14, 0.19, 0.32, 0.51, 0.57, 0.59, 0.59, 0.59, 0.65, 0.65,
        0.66, 0.66, 0.66, 0.66, 0.66, 0.66, 0.66, 0.66, 0.66, 0.66, 0.66, 0.66, 0.66, 0.66, 0.66, 0.66,
    ],
}
# fmt: on
