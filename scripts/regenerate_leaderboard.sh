#!/usr/bin/env bash
# Rebuild the shipped leaderboard entries by running `latentbench benchmark` for every built-in
# model, then validate and render. Run from the repository root:
#   scripts/regenerate_leaderboard.sh                      # digits-v2 (~1 min per model on one CPU thread)
#   scripts/regenerate_leaderboard.sh fashion-mnist-32-v2  # see below for the cost
#   scripts/regenerate_leaderboard.sh digits-v1 fashion-mnist-32-v1   # the v1 tables
#   MODELS="vae identity" scripts/regenerate_leaderboard.sh digits-v2 # a few models only
#   NO_RENDER=1 ...                                        # entries only, no validate/render/screenshot
#   KEEP_WORK=1 ...                                        # reuse stored cells whose keys did not change
# Measured on one CPU thread: digits-v1 17-47 s per model, fashion-mnist-32-v1 700-1020 s per
# model; or use LATENTBENCH_DEVICE=cuda.
# `gan` is excluded: it has no encoder, so latent-space/max-damage attacks, the encoder geometry
# scores and the downstream probe are undefined for it (it is evaluated with class_radius instead).
# v2 protocols add the two analytic reference rows of the headline score (docs/methods.md §7):
# `identity` (r(x) = x) and `constant` (r(x) = the mean training image).
set -euo pipefail
cd "$(dirname "$0")/.."
LB=${LATENTBENCH:-latentbench}
# One torch/OpenMP thread per process: the shipped entries were computed this way (recorded in
# provenance.hardware.torch_threads), and on a shared 2-core machine more threads spin-wait.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
DEVICE=${LATENTBENCH_DEVICE:-cpu}
AUTOENCODERS="vae beta_vae mixup_vae smooth_encoder lc_vae gmm_dae robust_gmm_dae robust_dae beta_tcvae"
# Conv entries of fashion-mnist-32-v2: the two models whose papers use a conv backbone, with a CPU-sized
# one (32-64-128 channels, k4 s2, 32 -> 4 px). The papers' 128-256-512(-1024) channels cost 3.9 ms per
# image for one encoder forward+backward on one CPU thread, 9 times the 32-64-128 encoder (measured side
# by side); at that cost the v1 protocol's pair attacks alone (12.06 M encoder passes) take 13 core-hours.
CONV_MODELS="lc_vae-conv gmm_dae-conv"
CONV_CHANNELS="[32,64,128]"
PROTOCOLS=("$@")
[ ${#PROTOCOLS[@]} -gt 0 ] || PROTOCOLS=(digits-v2)

for p in "${PROTOCOLS[@]}"; do
  case "$p" in
    colour-*) default_models="$CONV_MODELS identity constant" ;;
    fashion-*-v2) default_models="$AUTOENCODERS identity constant $CONV_MODELS" ;;
    *-v2) default_models="$AUTOENCODERS identity constant" ;;
    *) default_models="$AUTOENCODERS" ;;
  esac
  for m in ${MODELS:-$default_models}; do
    extra=()
    # NAME-conv: the plugin NAME with a conv backbone (see CONV_MODELS above); the entry is named NAME-conv
    plugin=${m%-conv}
    case "$p" in
      digits-*)
        # one shared small architecture (MLP 128-128, latent 10) so the entries differ only in the
        # objective; 40 epochs, batch 64. Checkpoints are small and committed.
        args=(--set latent_dim=10 --set backbone=mlp --set 'hidden=[128,128]' --train-epochs 40 --batch-size 64)
        ck="leaderboard/checkpoints/$p/$m"
        if [[ "$p" == digits-v2 ]]; then
          # the documents' settings collapse on 8x8 digits (docs/methods.md §7): beta = 4 ends with
          # KL 0.016 and every reconstruction classified as one digit; LC-VAE's lambda = 30 ends with a
          # clean MSE worse than a constant image's. digits-v2 ships the largest settings measured not
          # to collapse (the entry's model.config records them).
          case "$m" in beta_vae) extra=(--set beta=2.0) ;; lc_vae) extra=(--set lipschitz_weight=3.0) ;; esac
        fi ;;
      fashion-*)
        # latent 10 as in Robust-DAE appendix App. A; 2 epochs, batch 100. Checkpoints (2.6-3.7 MB) stay
        # out of git (runs/ is ignored); the entry's checkpoint.regenerate holds the command that rebuilds them.
        args=(--set latent_dim=10 --train-epochs 2 --batch-size 100)
        ck="runs/leaderboard-checkpoints/$p/$m"
        # lc_vae and gmm_dae default to their papers' conv backbone (128-256-512-1024 channels):
        # measured on one CPU thread, one PGD step over 100 images x 10 trials costs 3.9-5.5 s against
        # 0.03 s for the MLP (~20 h per v1 entry). The shipped CPU entries use their MLP backbones
        # (lc_vae 256-256-512 ReLU, gmm_dae 4 x 200 ReLU, Saseendran (thesis) §5.4.7), as every other
        # shipped model does; drop the override on a GPU.
        case "$m" in
          lc_vae|gmm_dae) extra=(--set backbone=mlp) ;;
          *-conv) extra=(--set backbone=conv --set "conv_channels=$CONV_CHANNELS") ;;
        esac ;;
      colour-*)
        # 3x64x64: LC-VAE's 4-layer conv depth (64 -> 4 px) at an eighth of its width, latent 10,
        # 2 epochs, batch 100; checkpoints out of git as for fashion
        args=(--set latent_dim=10 --train-epochs 2 --batch-size 100)
        ck="runs/leaderboard-checkpoints/$p/$m"
        case "$m" in *-conv) extra=(--set backbone=conv --set "conv_channels=[16,32,64,128]") ;; esac ;;
      *) echo "unknown protocol $p" >&2; exit 2 ;;
    esac
    # the reference rows have no architecture and nothing to train
    case "$m" in identity|constant) args=(--train-epochs 1 --batch-size 64); extra=() ;; esac
    # a fresh work dir: stored cells and resume states are keyed on inputs, not on the code that made them.
    # KEEP_WORK=1 keeps it, so only cells whose keys changed (a metric's new setting or plugin version)
    # are computed; use it only when the solver code is unchanged (leaderboard verify --full checks).
    [ -n "${KEEP_WORK:-}" ] || rm -rf "runs/benchmark/$p/$m"
    $LB benchmark --protocol "$p" --model "$plugin" --name "$m" "${args[@]}" "${extra[@]}" --device "$DEVICE" --no-progress \
      --save-checkpoint "$ck" --work-dir "runs/benchmark/$p/$m" --out "leaderboard/$p/$m.json"
  done
done

# NO_RENDER=1: only the entries (e.g. several protocols regenerated side by side, rendered once at the end)
[ -z "${NO_RENDER:-}" ] || exit 0
$LB leaderboard validate leaderboard
$LB leaderboard render leaderboard

# A picture of the rendered page (headless Chromium, Debian's `chromium`), when it is installed.
if command -v chromium >/dev/null 2>&1; then
  profile=$(mktemp -d)
  chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
    --disable-sync --no-first-run --disable-dev-shm-usage --user-data-dir="$profile" \
    --window-size=1600,1000 --screenshot="$PWD/leaderboard/screenshot.png" "file://$PWD/leaderboard/index.html" \
    >/dev/null 2>&1 || echo "chromium could not take the screenshot; leaderboard/screenshot.png left as it was" >&2
  rm -rf "$profile"
fi
