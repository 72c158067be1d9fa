package io.flinkagent.testbed;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.Boundedness;
import org.apache.flink.api.connector.source.Source;
import org.apache.flink.api.connector.source.SourceReader;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.api.connector.source.SourceSplit;
import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.core.io.SimpleVersionedSerializer;

/**
 * A FLIP-27 source standing in for a message queue: records "arrive" at a
 * steady rate whether or not the job reads them, so a job that stops
 * reading builds a backlog, as behind Kafka or Kinesis.
 *
 * <p>Each subtask reads one split. Record {@code i} of split {@code s} (of
 * {@code n}) has the value {@code i·n + s} and, as its event time, the moment
 * it arrived; arrivals are {@code recordsPerSecond / n} per second per split,
 * counted from the split's creation. The reader reports FLIP-33's
 * {@code pendingRecords} (arrived, not yet read) and emits the records with
 * their timestamps, so the job's watermark follows what it has read.
 *
 * <p>Control files (in the job's control directory, checked every 100 ms):
 *
 * <ul>
 *   <li>{@code stall}: the readers read nothing; the backlog grows, the
 *       watermark and the output stand still, checkpoints still complete;
 *   <li>{@code late} containing N: every N-th record is read with an event
 *       time a minute old, which event-time windows drop as late.
 * </ul>
 *
 * <p>After a stall the readers catch up at up to {@link #CATCH_UP} times the
 * arrival rate.
 */
public final class PacedSource
        implements Source<Long, PacedSource.Split, List<PacedSource.Split>>, ResultTypeQueryable<Long> {
    private static final long serialVersionUID = 1L;

    /** How much faster than the arrival rate a reader with a backlog reads. */
    static final int CATCH_UP = 4;

    private final double recordsPerSecond;
    private final String controlDir;

    PacedSource(double recordsPerSecond, String controlDir) {
        this.recordsPerSecond = recordsPerSecond;
        this.controlDir = controlDir;
    }

    @Override
    public Boundedness getBoundedness() {
        return Boundedness.CONTINUOUS_UNBOUNDED;
    }

    @Override
    public SourceReader<Long, Split> createReader(SourceReaderContext ctx) {
        return new PacedReader(ctx, recordsPerSecond, controlDir);
    }

    @Override
    public SplitEnumerator<Split, List<Split>> createEnumerator(SplitEnumeratorContext<Split> ctx) {
        int n = ctx.currentParallelism();
        long now = System.currentTimeMillis();
        List<Split> splits = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            splits.add(new Split(i, n, now, 0));
        }
        return new Enumerator(ctx, splits);
    }

    @Override
    public SplitEnumerator<Split, List<Split>> restoreEnumerator(SplitEnumeratorContext<Split> ctx, List<Split> unassigned) {
        return new Enumerator(ctx, unassigned);
    }

    @Override
    public SimpleVersionedSerializer<Split> getSplitSerializer() {
        return new SplitSerializer();
    }

    @Override
    public SimpleVersionedSerializer<List<Split>> getEnumeratorCheckpointSerializer() {
        return new EnumeratorSerializer();
    }

    @Override
    public TypeInformation<Long> getProducedType() {
        return Types.LONG;
    }

    /** Split {@code index} of {@code count}: its arrival clock and read position. */
    public static final class Split implements SourceSplit {
        final int index;
        final int count;
        final long startMillis; // arrivals are counted from here
        final long next; // the next record to read

        Split(int index, int count, long startMillis, long next) {
            this.index = index;
            this.count = count;
            this.startMillis = startMillis;
            this.next = next;
        }

        @Override
        public String splitId() {
            return Integer.toString(index);
        }

        Split at(long position) {
            return new Split(index, count, startMillis, position);
        }

        @Override
        public String toString() {
            return "Split{" + index + "/" + count + ", start=" + startMillis + ", next=" + next + "}";
        }
    }

    /**
     * Hands each reader that asks one split. Readers ask only when they hold
     * none (at their first start, or after a failover before any checkpoint
     * gave them one back).
     */
    static final class Enumerator implements SplitEnumerator<Split, List<Split>> {
        private final SplitEnumeratorContext<Split> ctx;
        private final ArrayDeque<Split> unassigned;

        Enumerator(SplitEnumeratorContext<Split> ctx, Collection<Split> unassigned) {
            this.ctx = ctx;
            this.unassigned = new ArrayDeque<>(unassigned);
        }

        @Override
        public void start() {}

        @Override
        public void handleSplitRequest(int subtask, String host) {
            Split s = unassigned.poll();
            if (s != null) {
                ctx.assignSplit(s, subtask);
            }
        }

        @Override
        public void addSplitsBack(List<Split> splits, int subtask) {
            unassigned.addAll(splits);
        }

        @Override
        public void addReader(int subtask) {}

        @Override
        public List<Split> snapshotState(long checkpointId) {
            return new ArrayList<>(unassigned);
        }

        @Override
        public void close() {}
    }

    static final class SplitSerializer implements SimpleVersionedSerializer<Split> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(Split s) throws IOException {
            ByteArrayOutputStream b = new ByteArrayOutputStream(24);
            try (DataOutputStream out = new DataOutputStream(b)) {
                write(out, s);
            }
            return b.toByteArray();
        }

        @Override
        public Split deserialize(int version, byte[] raw) throws IOException {
            try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(raw))) {
                return read(in);
            }
        }

        static void write(DataOutputStream out, Split s) throws IOException {
            out.writeInt(s.index);
            out.writeInt(s.count);
            out.writeLong(s.startMillis);
            out.writeLong(s.next);
        }

        static Split read(DataInputStream in) throws IOException {
            return new Split(in.readInt(), in.readInt(), in.readLong(), in.readLong());
        }
    }

    static final class EnumeratorSerializer implements SimpleVersionedSerializer<List<Split>> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(List<Split> splits) throws IOException {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            try (DataOutputStream out = new DataOutputStream(b)) {
                out.writeInt(splits.size());
                for (Split s : splits) {
                    SplitSerializer.write(out, s);
                }
            }
            return b.toByteArray();
        }

        @Override
        public List<Split> deserialize(int version, byte[] raw) throws IOException {
            try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(raw))) {
                int n = in.readInt();
                List<Split> splits = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                    splits.add(SplitSerializer.read(in));
                }
                return splits;
            }
        }
    }
}
