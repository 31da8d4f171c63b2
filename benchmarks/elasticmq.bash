# How ElasticMQ (fetched by benchmarks/setup) is run, in one place: sourced by
# benchmarks/servers, for the drain benchmark, and by scripts/emulators, for
# the tests that run the SQS source on a second SQS implementation.

# What its command line holds: checked before its PID is signalled, so that a
# recycled PID is never killed.
elasticmq_main=org.elasticmq.server.Main

# elasticmq_command LIB DATA PORT: writes DATA/elasticmq.conf and sets the
# array elasticmq_command to the command that serves SQS on 127.0.0.1:PORT
# with the jars in LIB. The jars bind every interface unless a config file
# says otherwise. "strict" keeps AWS's limits (message size, ten entries a
# batch, attribute names): what AWS refuses, a relaxed server would let pass.
elasticmq_command() {
  local lib=$1 data=$2 port=$3
  cat >"$data/elasticmq.conf" <<CONF
include classpath("application.conf")
node-address { protocol = http, host = "127.0.0.1", port = $port, context-path = "" }
rest-sqs { enabled = true, bind-port = $port, bind-hostname = "127.0.0.1", sqs-limits = strict }
rest-stats { enabled = false }
CONF
  elasticmq_command=(java -Xmx512m "-Dconfig.file=$data/elasticmq.conf" -cp "$lib/*" "$elasticmq_main")
}
