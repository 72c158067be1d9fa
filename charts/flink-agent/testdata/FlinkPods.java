// Prints, as JSON, the JobManager Deployment and a TaskManager Pod that
// Flink's own native-Kubernetes code builds from pod templates: the code the
// Flink Kubernetes Operator runs (KubernetesJobManagerFactory for the
// JobManager, KubernetesTaskManagerFactory as Flink's ResourceManager does for
// each TaskManager). The chart's tests send the result to a real API server.
//
//   java -cp "<flink lib>/*:flink-kubernetes-<v>.jar" FlinkPods.java \
//        CONF_DIR NAMESPACE [CLUSTER_ID JM_TEMPLATE|- TM_TEMPLATE|-]...
//
// prints a JSON list of {"jobmanager": Deployment, "taskmanager": Pod}, one
// per cluster (one JVM for several: it starts slowly).
import java.io.File;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.apache.flink.client.deployment.ClusterSpecification;
import org.apache.flink.configuration.BlobServerOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.DeploymentOptions;
import org.apache.flink.configuration.DeploymentOptionsInternal;
import org.apache.flink.configuration.JobManagerOptions;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.kubernetes.configuration.KubernetesConfigOptions;
import org.apache.flink.kubernetes.configuration.KubernetesConfigOptionsInternal;
import org.apache.flink.kubernetes.entrypoint.KubernetesSessionClusterEntrypoint;
import org.apache.flink.kubernetes.kubeclient.FlinkKubeClient;
import org.apache.flink.kubernetes.kubeclient.FlinkKubeClientFactory;
import org.apache.flink.kubernetes.kubeclient.FlinkPod;
import org.apache.flink.kubernetes.kubeclient.factory.KubernetesJobManagerFactory;
import org.apache.flink.kubernetes.kubeclient.factory.KubernetesTaskManagerFactory;
import org.apache.flink.kubernetes.kubeclient.parameters.KubernetesJobManagerParameters;
import org.apache.flink.kubernetes.kubeclient.parameters.KubernetesTaskManagerParameters;
import org.apache.flink.kubernetes.shaded.io.fabric8.kubernetes.client.utils.Serialization;
import org.apache.flink.kubernetes.utils.Constants;
import org.apache.flink.kubernetes.utils.KubernetesUtils;
import org.apache.flink.runtime.clusterframework.ContaineredTaskManagerParameters;
import org.apache.flink.runtime.clusterframework.TaskExecutorProcessUtils;

public class FlinkPods {
    public static void main(String[] args) throws Exception {
        List<Object> out = new ArrayList<>();
        for (int i = 2; i + 2 < args.length; i += 3) {
            out.add(build(args[0], args[1], args[i], args[i + 1], args[i + 2]));
        }
        System.out.println(Serialization.asJson(out));
    }

    private static Map<String, Object> build(String confDir, String namespace, String clusterId, String jmTemplate, String tmTemplate)
            throws Exception {
        Configuration conf = new Configuration();
        conf.set(KubernetesConfigOptions.CLUSTER_ID, clusterId);
        conf.set(KubernetesConfigOptions.NAMESPACE, namespace);
        conf.set(DeploymentOptionsInternal.CONF_DIR, confDir);
        conf.set(KubernetesConfigOptions.CONTAINER_IMAGE, "flink:1.20");
        conf.set(JobManagerOptions.TOTAL_PROCESS_MEMORY, MemorySize.parse("1024m"));
        conf.set(TaskManagerOptions.TOTAL_PROCESS_MEMORY, MemorySize.parse("1024m"));
        // As KubernetesClusterDescriptor.deploySessionCluster does: a session
        // cluster's entry point and fixed ports.
        conf.set(DeploymentOptions.TARGET, "kubernetes-session");
        conf.set(KubernetesConfigOptionsInternal.ENTRY_POINT_CLASS, KubernetesSessionClusterEntrypoint.class.getName());
        KubernetesUtils.checkAndUpdatePortConfigOption(conf, BlobServerOptions.PORT, Constants.BLOB_SERVER_PORT);
        KubernetesUtils.checkAndUpdatePortConfigOption(conf, TaskManagerOptions.RPC_PORT, Constants.TASK_MANAGER_RPC_PORT);
        KubernetesUtils.checkAndUpdatePortConfigOption(conf, RestOptions.BIND_PORT, Constants.REST_PORT);
        if (!tmTemplate.equals("-")) {
            conf.set(KubernetesConfigOptions.TASK_MANAGER_POD_TEMPLATE, tmTemplate);
        }
        // Only parses templates; it never connects.
        try (FlinkKubeClient client = FlinkKubeClientFactory.getInstance().fromConfiguration(conf, "flinkpods")) {
            ClusterSpecification spec = new ClusterSpecification.ClusterSpecificationBuilder()
                    .setMasterMemoryMB(1024).setTaskManagerMemoryMB(1024).setSlotsPerTaskManager(1)
                    .createClusterSpecification();
            Object jm = KubernetesJobManagerFactory.buildKubernetesJobManagerSpecification(
                    template(client, jmTemplate), new KubernetesJobManagerParameters(conf, spec)).getDeployment();

            KubernetesTaskManagerParameters tmParams = new KubernetesTaskManagerParameters(
                    conf, clusterId + "-taskmanager-1-1", "", "",
                    ContaineredTaskManagerParameters.create(conf, TaskExecutorProcessUtils.processSpecFromConfig(conf)),
                    Collections.emptyMap(), Collections.emptySet());
            Object tm = KubernetesTaskManagerFactory.buildTaskManagerKubernetesPod(
                    template(client, tmTemplate), tmParams).getInternalResource();

            Map<String, Object> out = new LinkedHashMap<>();
            out.put("jobmanager", jm);
            out.put("taskmanager", tm);
            return out;
        }
    }

    private static FlinkPod template(FlinkKubeClient client, String file) {
        if (file.equals("-")) {
            return new FlinkPod.Builder().build();
        }
        return KubernetesUtils.loadPodFromTemplateFile(client, new File(file), Constants.MAIN_CONTAINER_NAME);
    }
}
