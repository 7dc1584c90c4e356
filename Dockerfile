# Two images (Docker targets) for sr-tf models exported with `sr-tf export`:
#
#   tf-serving (the default, last stage): the official TensorFlow Serving binary with models baked in.
#     sr-tf export --model realesr-animevideov3-x4 --out models/realesr-animevideov3-x4/1
#     docker build -t sr-tf-serving .
#     docker run --rm -p 8500:8500 -p 8501:8501 sr-tf-serving
#
#   serve: `sr-tf serve` (TF Serving's flags; give --host=0.0.0.0 and the model), for the Kubernetes
#     and KServe manifests in serving/deploy/.
#     docker build --target serve -t sr-tf-serve .
#
#   vertex: Vertex AI custom container running `sr-tf serve --vertex` (REST on 0.0.0.0:$AIP_HTTP_PORT,
#     Vertex's health/predict routes, the model from $AIP_STORAGE_URI, mixed image sizes in one request).
#     docker build --target vertex -t sr-tf-vertex .
#
# See serving/README.md. TF_SERVING_VERSION is pinned to the TensorFlow release the models are
# exported with (tensorflow 2.21, tensorflow-serving-api 2.21); the flags below are checked against
# that version's tensorflow_model_server flag list (tests/serving/test_deployment_configs.py).
ARG TF_SERVING_VERSION=2.21.0

FROM python:3.11-slim AS serve
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY sr_tf/ sr_tf/
RUN pip install --no-cache-dir ".[serve]"
EXPOSE 8500 8501
ENTRYPOINT ["sr-tf", "serve"]

FROM serve AS vertex
ENV AIP_HTTP_PORT=8080
EXPOSE 8080
ENTRYPOINT ["sr-tf", "serve", "--vertex"]

FROM tensorflow/serving:${TF_SERVING_VERSION} AS tf-serving

# Exported models: models/NAME/VERSION/{saved_model.pb,variables/,assets.extra/} (the build context).
COPY models/ /models/
COPY serving/models.config serving/batching.config serving/monitoring.config /config/

# 8500: gRPC, 8501: REST (the image's defaults).
EXPOSE 8500 8501

# The image's entrypoint starts tensorflow_model_server with these flags added; with
# --model_config_file the MODEL_NAME variable is not used. Batching stays off: clients send images of
# any size, and TF Serving fails every batch that joins two sizes (padding them would change the
# upscaled edges). serving/batching.config is for deployments whose clients send one fixed size;
# add --enable_batching=true --batching_parameters_file=/config/batching.config there.
CMD ["--model_config_file=/config/models.config", \
     "--model_config_file_poll_wait_seconds=60", \
     "--monitoring_config_file=/config/monitoring.config"]
