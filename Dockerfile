# TensorFlow Serving with sr-tf models baked in.
#
#   sr-tf export --model realesr-animevideov3-x4 --out models/realesr-animevideov3-x4/1
#   docker build -t sr-tf-serving .
#   docker run --rm -p 8500:8500 -p 8501:8501 sr-tf-serving
#
# See serving/README.md for Kubernetes and Vertex AI. Pin TF_SERVING_VERSION for reproducible builds.
ARG TF_SERVING_VERSION=latest
FROM tensorflow/serving:${TF_SERVING_VERSION}

# Exported models: models/NAME/VERSION/{saved_model.pb,variables/,assets.extra/} (the build context).
COPY models/ /models/
COPY serving/models.config serving/batching.config serving/monitoring.config /config/

# 8500: gRPC, 8501: REST (the image's defaults).
EXPOSE 8500 8501

# The image's entrypoint starts tensorflow_model_server with these flags added; with
# --model_config_file the MODEL_NAME variable is not used.
CMD ["--model_config_file=/config/models.config", \
     "--model_config_file_poll_wait_seconds=60", \
     "--enable_batching=true", \
     "--batching_parameters_file=/config/batching.config", \
     "--monitoring_config_file=/config/monitoring.config"]
