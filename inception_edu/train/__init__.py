"""Training: a seeded, resumable loop, the papers' recipes, and the chapters' data.

    from inception_edu import create_model
    from inception_edu.train import digits_loaders, fit, evaluate

    loaders = digits_loaders(batch_size=64)
    model = create_model("googlenet_cifar", num_classes=10)
    history = fit(model, loaders.train, loaders.val, recipe="fast", epochs=3)
    evaluate(model, loaders.test)          # {'loss': ..., 'top1': ..., 'top5': ...}
"""
from .checkpoint import (CheckpointError, load_checkpoint, load_model, save_checkpoint,
                         seed_everything)
from .data import (Loaders, ShardSampler, TrainTransform, cifar10_loaders, default_num_workers,
                   digits_loaders, folder_loaders, load_digits, make_loaders, synthetic_loaders)
from .losses import inception_loss, smoothed_cross_entropy
from .recipes import (RECIPES, Recipe, build_optimizer, build_scheduler, default_recipe, get_recipe,
                      initialize, list_recipes)
from .trainer import (History, NonFiniteLossError, Predictions, Trainer, dist_info, evaluate, fit,
                      init_distributed, pick_device, predict_proba)

__all__ = [
    "Trainer", "fit", "evaluate", "predict_proba", "History", "Predictions", "pick_device",
    "NonFiniteLossError", "Recipe", "RECIPES", "get_recipe", "list_recipes", "build_optimizer",
    "build_scheduler", "default_recipe", "initialize", "dist_info", "init_distributed",
    "ShardSampler", "TrainTransform", "default_num_workers", "smoothed_cross_entropy", "inception_loss", "Loaders", "load_digits",
    "digits_loaders", "cifar10_loaders", "folder_loaders", "synthetic_loaders", "make_loaders",
    "CheckpointError", "save_checkpoint", "load_checkpoint", "load_model", "seed_everything",
]
