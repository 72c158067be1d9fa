package io.flinkagent.testbed;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.Collections;

import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.Collector;

/**
 * A small stateful job for the flink-agent test bed: a rate-limited sequence,
 * a map with operator state whose snapshot obeys fault switches, and a keyed
 * counter with ValueState.
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
 *       checkpoint really expires when N exceeds the checkpoint timeout.
 * </ul>
 *
 * <p>Arguments: {@code --control-dir DIR --parallelism N --records-per-second R}.
 */
public final class CheckpointingJob {

    public static void main(String[] args) throws Exception {
        String controlDir = "";
        int parallelism = 0;
        double recordsPerSecond = 100;
        long keys = 64;
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
                default:
                    throw new IllegalArgumentException("unknown argument " + a);
            }
        }

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        if (parallelism > 0) {
            env.setParallelism(parallelism);
        }
        int p = parallelism > 0 ? parallelism : env.getParallelism();
        double perSubtask = recordsPerSecond / Math.max(1, p);
        final long nKeys = keys;

        env.fromSequence(0, Long.MAX_VALUE)
                .name("sequence")
                .map(new Throttle(perSubtask, controlDir))
                .name("throttle")
                .keyBy(v -> v % nKeys)
                .process(new Count())
                .name("count")
                .sinkTo(new DiscardingSink<>())
                .name("discard");
        env.execute("flink-agent testbed checkpointing job");
    }

    /** Rate-limits the stream by sleeping, and applies the fault switches at snapshot time. */
    static final class Throttle extends RichMapFunction<Long, Long> implements CheckpointedFunction {
        private static final long serialVersionUID = 1L;

        private final double perSecond;
        private final String controlDir;
        private transient long startNanos;
        private transient long emitted;
        private transient long total;
        private transient ListState<Long> totalState;

        Throttle(double perSecond, String controlDir) {
            this.perSecond = perSecond;
            this.controlDir = controlDir;
        }

        @Override
        public Long map(Long v) throws Exception {
            if (startNanos == 0) {
                startNanos = System.nanoTime();
            }
            emitted++;
            total++;
            if (perSecond > 0) {
                // Sleep until this record's slot: the source would otherwise burn a core.
                long due = startNanos + (long) (emitted * 1e9 / perSecond);
                long wait = due - System.nanoTime();
                if (wait > 1_000_000L) {
                    // Short sleeps keep the task thread free for checkpoint barriers.
                    Thread.sleep(Math.min(wait / 1_000_000L, 200));
                }
            }
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
