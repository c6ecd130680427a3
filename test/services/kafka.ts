// Apache Kafka in KRaft mode (no ZooKeeper), run straight from its Maven Central jars.
//
// - `kafka`: the single broker+controller node that `up` and global setup start.
// - `kafkaCluster()`: an on-demand three-node cluster on other ports for fault tests
//   (replication factor 3, min.insync.replicas 2, kill -9 a broker, restart it). Never
//   started by `up`; tests that need it start it.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
// The plugin's fix for kafkajs's negative throttle timer (Node 24 warns), for the harness's own probes.
import { clampKafkajsThrottleTimer } from '../../plugins/kafka/src/kafkajs-request-queue.ts';
import {
  SERVICES_DIR,
  aptInstall,
  cacheDir,
  commandExists,
  livePid,
  processService,
  run,
  serviceDir,
  waitForExit,
  withLock,
  type ProcessService,
  type ServiceState,
} from './common.ts';
import { HOST, ports } from './endpoints.ts';

export const KAFKA_VERSION = '4.1.1';
const LOG4J_VERSION = '2.24.3';
const SLF4J_VERSION = '2.0.17';

// ---------------------------------------------------------------------------------
// Install: the broker's runtime classpath, gathered by Maven into the cache

const pom = `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>codefeedr.test</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>${KAFKA_VERSION}</version></dependency>
    <!-- Kafka logs through SLF4J; these bind it to log4j2, configured by log4j2.xml below.
         slf4j-api 2 is named explicitly: otherwise Maven picks Kafka's slf4j-api 1.7.36,
         which cannot see the slf4j2 binding and silently logs nothing (NOP logger). -->
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>${SLF4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>${LOG4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>${LOG4J_VERSION}</version></dependency>
  </dependencies>
</project>
`;

// The cache folder is keyed by the pom's hash, so changing the recipe re-gathers the jars.
const kafkaCache = cacheDir(
  `kafka-${KAFKA_VERSION}-${createHash('sha256').update(pom).digest('hex').slice(0, 8)}`,
);
const libsDir = join(kafkaCache, 'libs');
const classpath = `${libsDir}/*`; // expanded by java itself, not by a shell

/**
 * Resolves a POM's runtime dependencies from Maven Central into `<cache>/libs`. Written to
 * `libs.tmp` and renamed, so only a complete classpath counts as cached. The caller holds the lock.
 */
async function copyMavenDependencies(cache: string, pomText: string): Promise<void> {
  const libs = join(cache, 'libs');
  if (existsSync(libs)) return;
  writeFileSync(join(cache, 'pom.xml'), pomText);
  const tmp = `${libs}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  await run(
    'mvn',
    [
      '-B',
      '-q',
      '-f',
      join(cache, 'pom.xml'),
      'dependency:copy-dependencies',
      `-DoutputDirectory=${tmp}`,
      '-DincludeScope=runtime',
    ],
    { cwd: cache, timeoutMs: 10 * 60_000 },
  );
  renameSync(tmp, libs);
}

async function installKafka(): Promise<void> {
  await withLock('kafka-install', async () => {
    if (existsSync(libsDir)) return;
    await aptInstall(['openjdk-17-jre-headless'], () => commandExists('java'));
    await aptInstall(['maven'], () => commandExists('mvn'));
    await copyMavenDependencies(kafkaCache, pom);
  });
}

// Kafka's own perf tools (`org.apache.kafka.tools.ProducerPerformance` / `ConsumerPerformance`),
// for the buffer bench's ceiling. They live in `kafka-tools`, which the broker does not need, so
// they are gathered on demand into a cache folder of their own: the broker's classpath (and its
// cache key) stay as they are. The returned classpath is the tools' jars then the broker's.
const toolsPom = `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>codefeedr.test</groupId>
  <artifactId>kafka-tools</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>${KAFKA_VERSION}</version></dependency>
  </dependencies>
</project>
`;
const toolsCache = cacheDir(
  `kafka-tools-${KAFKA_VERSION}-${createHash('sha256').update(toolsPom).digest('hex').slice(0, 8)}`,
);
const toolsLibsDir = join(toolsCache, 'libs');

export async function installKafkaTools(): Promise<string> {
  await installKafka();
  await withLock('kafka-tools-install', () => copyMavenDependencies(toolsCache, toolsPom));
  return `${toolsLibsDir}/*:${classpath}`;
}

// ---------------------------------------------------------------------------------
// One KRaft node (broker + controller in one JVM)

interface NodeConfig {
  dir: string;
  nodeId: number;
  port: number;
  controllerPort: number;
  /** controller.quorum.voters, the same string on every node of a cluster. */
  voters: string;
  /** Cluster-specific broker settings (replication factors and the like). */
  settings: Record<string, string | number | boolean>;
  heap: string;
  /** Extra JVM options (the cluster trades peak speed for faster broker restarts). */
  jvmOptions: string[];
}

function propertiesFile(node: NodeConfig): string {
  return join(node.dir, 'server.properties');
}

function writeNodeFiles(node: NodeConfig): void {
  mkdirSync(join(node.dir, 'data'), { recursive: true });
  const properties: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': node.nodeId,
    'controller.quorum.voters': node.voters,
    listeners: `PLAINTEXT://${HOST}:${node.port},CONTROLLER://${HOST}:${node.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://${HOST}:${node.port}`,
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'log.dirs': join(node.dir, 'data'),
    'num.partitions': 1,
    'auto.create.topics.enable': true,
    // No consumer-group join delay: tests would otherwise wait 3 s per new group.
    'group.initial.rebalance.delay.ms': 0,
    // Fewer internal partitions than the default 50: the first consumer group or
    // transaction on a fresh node then starts in a fraction of the time.
    'offsets.topic.num.partitions': 10,
    'transaction.state.log.num.partitions': 10,
    ...node.settings,
  };
  const lines = Object.entries(properties).map(([key, value]) => `${key}=${String(value)}`);
  writeFileSync(propertiesFile(node), `${lines.join('\n')}\n`);

  // log4j2 writes the broker's log to server.log; the JVM's own stdout/stderr (crashes,
  // early errors) go to the process log next to it.
  writeFileSync(
    join(node.dir, 'log4j2.xml'),
    `<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="warn">
  <Appenders>
    <File name="file" fileName="${join(node.dir, 'server.log')}" append="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Logger name="org.apache.kafka.clients" level="warn"/>
    <Logger name="state.change.logger" level="warn"/>
    <Root level="info"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
`,
  );
}

/** A random KRaft cluster id (base64url of 16 bytes, as kafka-storage random-uuid prints). */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    // Kafka never issues ids starting with '-': the CLI would read them as an option.
    if (!id.startsWith('-')) return id;
  }
}

/** kafka-storage format, once per data directory (meta.properties marks it formatted). */
async function formatStorage(node: NodeConfig, clusterId: string): Promise<void> {
  if (existsSync(join(node.dir, 'data', 'meta.properties'))) return;
  await run(
    'java',
    [
      // A short-lived tool: the C1 compiler alone and the serial GC start it noticeably faster.
      '-XX:TieredStopAtLevel=1',
      '-XX:+UseSerialGC',
      '-cp',
      classpath,
      `-Dlog4j2.configurationFile=${join(node.dir, 'log4j2.xml')}`,
      'kafka.tools.StorageTool',
      'format',
      '-t',
      clusterId,
      '-c',
      propertiesFile(node),
      '--ignore-formatted',
    ],
    { cwd: node.dir, timeoutMs: 120_000 },
  );
}

/**
 * Readiness: a kafkajs admin client bootstrapped from this node alone describes the
 * cluster and lists `expectedNodeIds` among the live brokers. A KRaft broker only
 * serves clients once it is registered and unfenced, so this proves it can do work.
 */
export async function describeClusterIncludes(
  brokers: string[],
  expectedNodeIds: number[],
): Promise<boolean> {
  clampKafkajsThrottleTimer();
  const kafka = new Kafka({
    clientId: 'codefeedr-harness-probe',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: 2_000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    const live = new Set(cluster.brokers.map((b) => b.nodeId));
    return expectedNodeIds.every((id) => live.has(id));
  } finally {
    await admin.disconnect();
  }
}

function nodeService(name: string, node: NodeConfig, clusterIdFile: string): ProcessService {
  return processService({
    name,
    dir: node.dir,
    url: `${HOST}:${node.port}`,
    // The properties path is unique per node, so a pid can never be mistaken for another node's JVM.
    cmdlineMarker: propertiesFile(node),
    install: installKafka,
    prepare: async () => {
      writeNodeFiles(node);
      if (!existsSync(clusterIdFile)) writeFileSync(clusterIdFile, `${newClusterId()}\n`);
      await formatStorage(node, readFileSync(clusterIdFile, 'utf8').trim());
    },
    command: () => ({
      file: 'java',
      args: [
        `-Xms256m`,
        `-Xmx${node.heap}`,
        '-XX:+UseG1GC',
        ...node.jvmOptions,
        '-Djava.awt.headless=true',
        `-Dlog4j2.configurationFile=${join(node.dir, 'log4j2.xml')}`,
        `-Dkafka.logs.dir=${node.dir}`,
        '-cp',
        classpath,
        'kafka.Kafka',
        propertiesFile(node),
      ],
      cwd: node.dir,
    }),
    probe: () => describeClusterIncludes([`${HOST}:${node.port}`], [node.nodeId]),
    startTimeoutMs: 180_000,
    stopGraceMs: 30_000,
    extraLogs: [join(node.dir, 'server.log')],
  });
}

// ---------------------------------------------------------------------------------
// The single node used by every Kafka test

const singleDir = serviceDir('kafka');

export const kafka: ProcessService = nodeService(
  'kafka',
  {
    dir: singleDir,
    nodeId: 1,
    port: ports.kafka,
    controllerPort: ports.kafkaController,
    voters: `1@${HOST}:${ports.kafkaController}`,
    settings: {
      'default.replication.factor': 1,
      'min.insync.replicas': 1,
      'offsets.topic.replication.factor': 1,
      'transaction.state.log.replication.factor': 1,
      'transaction.state.log.min.isr': 1,
      'share.coordinator.state.topic.replication.factor': 1,
      'share.coordinator.state.topic.min.isr': 1,
      // Broker and controller share one JVM here; with the cores busy, the controller's event
      // queue fell 18 s behind and fenced its own broker for a missed heartbeat (9 s default),
      // and every partition lost its leader at once. With no other broker to fail over to,
      // fencing it only ever hurts.
      'broker.session.timeout.ms': 60_000,
      // After an unclean stop the restarted controller keeps the old registration until that
      // 60 s session expires, refusing the broker (DUPLICATE_BROKER_REGISTRATION); with the
      // default 60 s registration timeout the broker gave up at the same moment and exited.
      'initial.broker.registration.timeout.ms': 120_000,
    },
    heap: '1g',
    // Full JIT: this broker stays up across test runs and benchmarks measure it.
    jvmOptions: [],
  },
  join(singleDir, 'cluster-id'),
);

// ---------------------------------------------------------------------------------
// The three-node cluster for fault tests

export type ClusterState = 'up' | 'down' | 'degraded';

export interface KafkaClusterNode {
  nodeId: number;
  /** host:port of its PLAINTEXT listener. */
  broker: string;
  controllerPort: number;
}

export interface KafkaCluster {
  readonly name: string;
  /** kafkajs `brokers`: all three host:port entries. */
  readonly brokers: string[];
  readonly nodes: KafkaClusterNode[];
  /** Starts all three nodes on fresh data (no-op when all three are already up). */
  start(): Promise<void>;
  /** Stops every node that is running; data is wiped by the next start(). */
  stop(): Promise<void>;
  status(): Promise<{ state: ClusterState; nodes: { nodeId: number; state: ServiceState }[] }>;
  /** `kill -9` of one broker's JVM; resolves once the process is gone. */
  killBroker(nodeId: number): Promise<void>;
  /** (Re)starts one node on its existing data; resolves when it is back as a live broker. */
  startBroker(nodeId: number): Promise<void>;
}

export const KAFKA_CLUSTER_NODE_IDS = [1, 2, 3] as const;

/**
 * The three-node KRaft cluster: node i listens on basePort + 2(i-1) (PLAINTEXT) and
 * basePort + 2(i-1) + 1 (CONTROLLER); every node is a voter, so one may die and the
 * quorum (2 of 3) and every partition (RF 3, min ISR 2) keep working.
 */
export function kafkaCluster(basePort: number = ports.kafkaCluster): KafkaCluster {
  const name = 'kafka-cluster';
  const dir = join(SERVICES_DIR, name);
  const clusterIdFile = join(dir, 'cluster-id');
  const nodes: KafkaClusterNode[] = KAFKA_CLUSTER_NODE_IDS.map((nodeId) => ({
    nodeId,
    broker: `${HOST}:${basePort + 2 * (nodeId - 1)}`,
    controllerPort: basePort + 2 * (nodeId - 1) + 1,
  }));
  const voters = nodes.map((n) => `${n.nodeId}@${HOST}:${n.controllerPort}`).join(',');
  const services = new Map<number, ProcessService>(
    nodes.map((n) => [
      n.nodeId,
      nodeService(
        `${name}-node-${n.nodeId}`,
        {
          dir: join(dir, `node-${n.nodeId}`),
          nodeId: n.nodeId,
          port: basePort + 2 * (n.nodeId - 1),
          controllerPort: n.controllerPort,
          voters,
          settings: {
            'default.replication.factor': 3,
            'min.insync.replicas': 2,
            'offsets.topic.replication.factor': 3,
            'transaction.state.log.replication.factor': 3,
            'transaction.state.log.min.isr': 2,
            'share.coordinator.state.topic.replication.factor': 3,
            'share.coordinator.state.topic.min.isr': 2,
            // Notice a killed broker within seconds rather than the default 9 s session.
            'broker.heartbeat.interval.ms': 1_000,
            'broker.session.timeout.ms': 6_000,
          },
          heap: '512m',
          // C1 only: fault tests restart brokers often, and this starts a broker about
          // a third faster (measured here: 14-16 s instead of 20 s on a loaded machine).
          jvmOptions: ['-XX:TieredStopAtLevel=1'],
        },
        clusterIdFile,
      ),
    ]),
  );
  const node = (nodeId: number): ProcessService => {
    const service = services.get(nodeId);
    if (service === undefined) throw new Error(`${name} has no node ${nodeId}; nodes are 1, 2, 3`);
    return service;
  };
  const all = [...services.values()];

  const status: KafkaCluster['status'] = async () => {
    const states = await Promise.all(
      nodes.map(async (n) => ({ nodeId: n.nodeId, state: await node(n.nodeId).status() })),
    );
    const upCount = states.filter((s) => s.state === 'up').length;
    const state: ClusterState =
      upCount === nodes.length ? 'up' : upCount === 0 ? 'down' : 'degraded';
    return { state, nodes: states };
  };

  return {
    name,
    brokers: nodes.map((n) => n.broker),
    nodes,
    status,
    start: () =>
      withLock(name, async () => {
        if ((await status()).state === 'up') return;
        // Fault tests want a known state: stop leftovers and start from empty disks,
        // all three at once (a KRaft node cannot finish starting without a quorum).
        await Promise.all(all.map((s) => s.stop()));
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir, { recursive: true });
        writeFileSync(clusterIdFile, `${newClusterId()}\n`);
        await installKafka();
        // allSettled: wait for every node's attempt before cleaning up after a failure.
        const results = await Promise.allSettled(all.map((s) => s.start()));
        const failures = results.flatMap((r) =>
          r.status === 'rejected' ? [(r.reason as Error).message] : [],
        );
        if (failures.length > 0) {
          // Leave no half-started cluster behind: the next start() begins from scratch.
          await Promise.allSettled(all.map((s) => s.stop()));
          throw new Error(`${name} failed to start:\n${failures.join('\n\n')}`);
        }
      }),
    stop: () => withLock(name, async () => void (await Promise.all(all.map((s) => s.stop())))),
    killBroker: async (nodeId) => {
      const service = node(nodeId);
      const pid = livePid(service.pidFile, join(dir, `node-${nodeId}`, 'server.properties'));
      if (pid === undefined) throw new Error(`${name} node ${nodeId} is not running`);
      process.kill(pid, 'SIGKILL');
      if (!(await waitForExit(pid, 10_000)))
        throw new Error(`${name} node ${nodeId} (pid ${pid}) survived SIGKILL`);
    },
    startBroker: (nodeId) => node(nodeId).start(),
  };
}
