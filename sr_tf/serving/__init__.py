"""An embedded server with TensorFlow Serving's REST and gRPC protocol, and clients for both.

Import the pieces from their modules (`sr_tf.serving.server.ModelServer`,
`sr_tf.serving.clients.RestClient`, ...); this package imports nothing heavy by itself.
"""
