"""The chapters' experiment designs on the cluttered digits, as the chapter cells run them.

    OMP_NUM_THREADS=1 CI=1 python benchmarks/cluttered_designs.py ch4 ch5 ch6

One thread; each chapter's Results (every run's history and metrics, wall seconds, load
average before and after) go to benchmarks/results/cluttered_designs/<chapter>.json.
The designs and their measured results are discussed in the team note H7_experiments.md.
"""
import json, os, sys, time
import torch
torch.set_num_threads(1)
import inception_edu as ie
from inception_edu.layers import conv_bn
from inception_edu.train.experiments import (run_seeds, calibration, nin_with_head,
                                             reduction_net, without_batchnorm)

def D(n):  # data sizes of a chapter
    return dict(num_train=n, num_val=300, num_test=1000)

def ch1():
    return run_seeds(nin_with_head, {"GAP head (NIN)": dict(head="gap"), "FC head": dict(head="fc")},
                     data_kw=D(2000), epochs=4)

def ch3():
    def build(num_classes, aux_logits, batch_norm):
        m = ie.create_model("googlenet_cifar", num_classes=num_classes, width_mult=0.5, aux_logits=aux_logits)
        return m if batch_norm else without_batchnorm(m, init="xavier")
    v = {f"{'BN' if bn else 'no BN'}, {'aux' if a else 'no aux'}": dict(aux_logits=a, batch_norm=bn, aux_weight=0.3 if a else 0.0)
         for bn in (True, False) for a in (True, False)}
    return run_seeds(build, v, data_kw=D(1500), epochs=3)

def ch4():
    def build(num_classes, batch_norm):
        m = ie.create_model("googlenet_cifar", num_classes=num_classes, width_mult=0.5)
        return m if batch_norm else without_batchnorm(m)
    v = {"no BN, lr 0.003": dict(batch_norm=False, lr=0.003), "no BN, lr 0.03": dict(batch_norm=False, lr=0.03),
         "BN, lr 0.03": dict(batch_norm=True, lr=0.03)}
    return run_seeds(build, v, data_kw=D(1500), epochs=3)

def ch5():
    return run_seeds("inception_v3_cifar", {"factorized": dict(width_mult=0.5, factorized=True),
                                           "unfactorized": dict(width_mult=0.5, factorized=False)},
                     data_kw=D(2000), epochs=4)

def ch6():
    return run_seeds(reduction_net, {r: dict(reduction=r) for r in ("pool_expand", "expand_pool", "parallel")},
                     data_kw=D(2000), epochs=3)

def ch7():
    return run_seeds("inception_v3_cifar", {"one-hot": dict(width_mult=0.5, label_smoothing=0.0),
                                           "smoothed (eps 0.1)": dict(width_mult=0.5, label_smoothing=0.1)},
                     data_kw=D(2000), epochs=4, measure=calibration)

def ch8():
    def tiny_model(num_classes, factorized, bn_aux, width_mult=0.5):
        model = ie.create_model("inception_v3_cifar", num_classes=num_classes, width_mult=width_mult,
                                aux_logits=True, factorized=factorized)
        if not bn_aux:
            head = next(iter(model.aux.values()))
            fc = head.conv1.conv
            head.conv1 = conv_bn(fc.in_channels, fc.out_channels, fc.kernel_size, norm=False)
        return model
    SGD, NO_LS = dict(optimizer="sgd"), dict(label_smoothing=0.0)
    v = {"Inception-v2": dict(factorized=False, bn_aux=False, **SGD, **NO_LS),
         "+ RMSProp": dict(factorized=False, bn_aux=False, **NO_LS),
         "+ label smoothing": dict(factorized=False, bn_aux=False),
         "+ factorized": dict(factorized=True, bn_aux=False),
         "+ BN-auxiliary": dict(factorized=True, bn_aux=True)}
    return run_seeds(tiny_model, v, data_kw=D(1500), epochs=3, recipe="rethinking", step_size=1, gamma=0.35)

def ch10():
    return run_seeds("inception_resnet_cifar", {"s = 1 (unscaled)": dict(width_mult=0.5, residual_scale=1.0),
                                               "s = 0.2": dict(width_mult=0.5, residual_scale=0.2)},
                     data_kw=D(1500), epochs=3, recipe="googlenet", lr=0.1, weight_decay=0.0)

for name in sys.argv[1:]:
    t = time.perf_counter(); load = os.getloadavg()[0]
    res = globals()[name]()
    wall = time.perf_counter() - t
    d = res.to_dict(); d["wall_s"] = wall; d["load_before"] = load; d["load_after"] = os.getloadavg()[0]
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "cluttered_designs")
    os.makedirs(out, exist_ok=True)
    json.dump(d, open(os.path.join(out, f"{name}.json"), "w"))
    import pandas as pd; pd.set_option("display.width", 200)
    print(f"=== {name}: {wall:.0f} s wall (load {load:.1f} -> {os.getloadavg()[0]:.1f})")
    print(res.table(), flush=True)
