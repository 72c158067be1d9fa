package io.flinkagent.testbed;

import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.Arrays;
import java.util.Collections;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.DataStreamSink;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.util.Collector;

/**
 * A small stateful job for the flink-agent test bed: a paced FLIP-27 source
 * with event time and a backlog ({@link PacedSource}), a map with operator
 * state whose snapshot obeys fault switches, a keyed counter with
 * ValueState, and a one-second event-time window that drops late records.
 *
 * <p>Checkpointing (interval, timeout, tolerable failures, storage) comes from
 * the cluster configuration, so tests set it where operators do.
 *
 * <p>Fault switches are files in the control directory, read at every
 * snapshot by every subtask:
 *
 * <ul>
 *   <li>{@code fail}: the asynchronous phase fails, so the tasks decline the
 *       checkpoint ("Asynchronous task checkpoint failed.") and keep running;
 *   <li>{@code fail-sync}: snapshotState throws, which fails the task, so the
 *       checkpoint fails ("Task has failed.") and the job restarts;
 *   <li>{@code sleep-ms} containing N: snapshotState sleeps N ms, so the
 *       checkpoint really expires when N exceeds the checkpoint timeout;
 *   <li>{@code stall}: the source stops reading; its backlog
 *       ({@code pendingRecords}) grows and the watermark stands still;
 *   <li>{@code late} containing N: every N-th record is a minute late and
 *       the window drops it ({@code numLateRecordsDropped}).
 * </ul>
 *
 * <p>The job compiles against Flink 1.18 to 2.2; the two APIs that differ
 * are bridged by {@link #tumbling} and {@link #discard}.
 *
 * <p>Arguments: {@code --control-dir DIR --parallelism N --records-per-second R --keys K --job-name NAME}
 * (several jobs on one cluster need their own names: metrics are labelled by job name).
 */
public final class CheckpointingJob {

    public static void main(String[] args) throws Exception {
        String controlDir = "";
        int parallelism = 0;
        double recordsPerSecond = 100;
        long keys = 64;
        String jobName = "flink-agent testbed checkpointing job";
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException("missing value for " + a);
            }
            String v = args[++i];
            switch (a) {
                case "--control-dir":
                    controlDir = v;
                    break;
                case "--parallelism":
                    parallelism = Integer.parseInt(v);
                    break;
                case "--records-per-second":
                    recordsPerSecond = Double.parseDouble(v);
                    break;
                case "--keys":
                    keys = Long.parseLong(v);
                    break;
                case "--job-name":
                    jobName = v;
                    break;
                default:
                    throw new IllegalArgumentException("unknown argument " + a);
            }
        }

        if (!(recordsPerSecond > 0)) {
            throw new IllegalArgumentException("--records-per-second must be positive");
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        if (parallelism > 0) {
            env.setParallelism(parallelism);
        }
        final long nKeys = keys;

        DataStream<Long> records = env.fromSource(
                        new PacedSource(recordsPerSecond, controlDir),
                        WatermarkStrategy.<Long>forBoundedOutOfOrderness(Duration.ofMillis(200)),
                        "sequence")
                .map(new FaultSwitches(controlDir))
                .name("throttle"); // the vertex name tests and captured fixtures know
        discard(records.keyBy(v -> v % nKeys).process(new Count()).name("count"), "discard");
        discard(records.keyBy(v -> v % nKeys)
                        .window(tumbling(Duration.ofSeconds(1)))
                        .reduce(Long::sum)
                        .name("window"),
                "discard windows");
        env.execute(jobName);
    }

    /**
     * TumblingEventTimeWindows.of(Duration) (Flink 1.19 and later; 2.x has
     * only this one) or of(Time) (1.18, whose Time class 2.x removed).
     */
    static TumblingEventTimeWindows tumbling(Duration size) throws ReflectiveOperationException {
        try {
            return (TumblingEventTimeWindows) TumblingEventTimeWindows.class.getMethod("of", Duration.class).invoke(null, size);
        } catch (NoSuchMethodException e) {
            Class<?> time = Class.forName("org.apache.flink.streaming.api.windowing.time.Time");
            Object t = time.getMethod("milliseconds", long.class).invoke(null, size.toMillis());
            Method of = TumblingEventTimeWindows.class.getMethod("of", time);
            return (TumblingEventTimeWindows) of.invoke(null, t);
        }
    }

    /**
     * Ends a stream in a discarding sink: the Sink V2 DiscardingSink (Flink
     * 1.19 and later; 2.x has no SinkFunction) or 1.18's SinkFunction one.
     */
    @SuppressWarnings("unchecked")
    static void discard(DataStream<Long> stream, String name) throws ReflectiveOperationException {
        try {
            Object sink = Class.forName("org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink")
                    .getConstructor().newInstance();
            stream.sinkTo((Sink<Long>) sink).name(name);
        } catch (ClassNotFoundException e) {
            Object sink = Class.forName("org.apache.flink.streaming.api.functions.sink.DiscardingSink")
                    .getConstructor().newInstance();
            Class<?> fn = Class.forName("org.apache.flink.streaming.api.functions.sink.SinkFunction");
            DataStreamSink<?> end = (DataStreamSink<?>) DataStream.class.getMethod("addSink", fn).invoke(stream, sink);
            end.name(name);
        }
    }

    /** Applies the fault switches at snapshot time; keeps a running total as operator state. */
    static final class FaultSwitches extends RichMapFunction<Long, Long> implements CheckpointedFunction {
        private static final long serialVersionUID = 1L;

        private final String controlDir;
        private transient long total;
        private transient ListState<Long> totalState;

        FaultSwitches(String controlDir) {
            this.controlDir = controlDir;
        }

        @Override
        public Long map(Long v) {
            total++;
            return v;
        }

        @Override
        public void snapshotState(FunctionSnapshotContext ctx) throws Exception {
            if (!controlDir.isEmpty()) {
                Path dir = Paths.get(controlDir);
                Path sleep = dir.resolve("sleep-ms");
                if (Files.exists(sleep)) {
                    long ms = Long.parseLong(read(sleep));
                    Thread.sleep(ms);
                }
                if (Files.exists(dir.resolve("fail-sync"))) {
                    throw new IOException(
                            "testbed fault switch: failing snapshot of checkpoint " + ctx.getCheckpointId());
                }
                if (Files.exists(dir.resolve("fail"))) {
                    totalState.update(Arrays.asList(total, PoisonableLongSerializer.POISON));
                    return;
                }
            }
            totalState.update(Collections.singletonList(total));
        }

        @Override
        public void initializeState(FunctionInitializationContext ctx) throws Exception {
            totalState = ctx.getOperatorStateStore().getListState(new ListStateDescriptor<>("total", new PoisonableLongSerializer()));
            for (Long n : totalState.get()) {
                // Restored splits of the list are summed: the total is over all subtasks.
                total += n;
            }
        }

        private static String read(Path p) throws IOException {
            return new String(Files.readAllBytes(p), StandardCharsets.UTF_8).trim();
        }
    }

    /** Counts records per key in keyed ValueState. */
    static final class Count extends KeyedProcessFunction<Long, Long, Long> {
        private static final long serialVersionUID = 1L;

        private transient ValueState<Long> count;

        @Override
        public void processElement(Long v, Context ctx, Collector<Long> out) throws Exception {
            if (count == null) {
                count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Types.LONG));
            }
            Long c = count.value();
            long n = c == null ? 1 : c + 1;
            count.update(n);
            out.collect(n);
        }
    }
}
