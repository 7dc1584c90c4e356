import sys

from sr_tf.cli import main

sys.exit(main())
