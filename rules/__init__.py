"""The rule catalogue, one module per family; this list is the registry, sorted by code."""

from __future__ import annotations

from nnlint.registry import Rule

from .activations import (
    activation_on_logits,
    missing_nonlinearity,
    nll_loss_on_raw_scores,
    redundant_activation,
    saturating_activation_stack,
    sigmoid_and_bce_mismatch,
    softmax_before_cross_entropy,
)
from .dropout import (
    dropout_always_on,
    dropout_before_batchnorm,
    dropout_never_applied,
    dropout_on_output,
    dropout_rate_suspicious,
    no_regularization,
)
from .normalization import (
    batch_too_large,
    batch_too_small_for_batchnorm,
    batchnorm_after_activation,
    batchnorm_called_repeatedly,
    batchnorm_eps_suspicious,
    batchnorm_in_recurrent_path,
    batchnorm_momentum_convention,
    batchnorm_without_running_stats,
    batchnorm_wrong_axis,
    bias_before_batchnorm,
    frozen_batchnorm_in_train_mode,
)
from .optimizer import adam_with_l2_weight_decay, learning_rate_out_of_range, parameters_not_in_optimizer, weight_decay_on_norm_or_bias
from .parameters import (
    initialization_scale,
    no_trainable_parameters,
    requires_grad_set_on_module,
    symmetric_initialization,
    unregistered_submodules,
    unused_module,
)
from .probe_gradients import (
    activation_scale_drift,
    dead_relu,
    exploding_gradients,
    non_finite_values,
    parameters_without_gradient,
    saturated_activation,
    vanishing_gradients,
)
from .probe_inputs import constant_features, features_on_different_scales, unscaled_inputs
from .probe_training import (
    batch_samples_mixed,
    cannot_overfit_one_batch,
    eval_mode_not_deterministic,
    loss_at_initialization,
    output_cannot_reach_targets,
    train_eval_mismatch,
    update_to_weight_ratio,
)
from .tool import graph_fallback, target_unusable, unused_suppression
from .training_run import (
    batchnorm_statistics_drift,
    dead_units_growing,
    gradient_norm_trend,
    learning_rate_never_decays,
    loss_divergence,
    no_early_stopping,
    no_validation,
    scheduler_step_frequency,
    training_in_eval_mode,
    validation_in_train_mode,
)

ALL_RULES: tuple[Rule, ...] = (
    graph_fallback,  # NN001
    target_unusable,  # NN002
    unused_suppression,  # NN003
    batchnorm_in_recurrent_path,  # NN101
    batchnorm_called_repeatedly,  # NN102
    batchnorm_after_activation,  # NN103
    bias_before_batchnorm,  # NN104
    batch_too_small_for_batchnorm,  # NN105
    batch_too_large,  # NN106
    batchnorm_without_running_stats,  # NN107
    batchnorm_momentum_convention,  # NN108
    batchnorm_eps_suspicious,  # NN109
    frozen_batchnorm_in_train_mode,  # NN110
    batchnorm_wrong_axis,  # NN111
    dropout_before_batchnorm,  # NN201
    dropout_always_on,  # NN202
    dropout_rate_suspicious,  # NN203
    dropout_on_output,  # NN204
    no_regularization,  # NN205
    dropout_never_applied,  # NN206
    saturating_activation_stack,  # NN301
    softmax_before_cross_entropy,  # NN302
    sigmoid_and_bce_mismatch,  # NN303
    redundant_activation,  # NN304
    missing_nonlinearity,  # NN305
    activation_on_logits,  # NN306
    nll_loss_on_raw_scores,  # NN307
    symmetric_initialization,  # NN401
    initialization_scale,  # NN402
    unused_module,  # NN403
    no_trainable_parameters,  # NN404
    unregistered_submodules,  # NN405
    requires_grad_set_on_module,  # NN406
    adam_with_l2_weight_decay,  # NN501
    weight_decay_on_norm_or_bias,  # NN502
    learning_rate_out_of_range,  # NN503
    parameters_not_in_optimizer,  # NN504
    no_early_stopping,  # NN601
    learning_rate_never_decays,  # NN602
    scheduler_step_frequency,  # NN603
    loss_divergence,  # NN604
    training_in_eval_mode,  # NN605
    no_validation,  # NN606
    gradient_norm_trend,  # NN607
    dead_units_growing,  # NN608
    batchnorm_statistics_drift,  # NN609
    validation_in_train_mode,  # NN610
    unscaled_inputs,  # NN701
    features_on_different_scales,  # NN702
    constant_features,  # NN703
    vanishing_gradients,  # NN801
    exploding_gradients,  # NN802
    non_finite_values,  # NN803
    dead_relu,  # NN804
    saturated_activation,  # NN805
    activation_scale_drift,  # NN806
    parameters_without_gradient,  # NN807
    eval_mode_not_deterministic,  # NN901
    train_eval_mismatch,  # NN902
    loss_at_initialization,  # NN903
    cannot_overfit_one_batch,  # NN904
    update_to_weight_ratio,  # NN905
    batch_samples_mixed,  # NN906
    output_cannot_reach_targets,  # NN907
)
