// Measurement 6: downloads. Building a ZIP of a site's files through the api and the worker
// (createDownload → COMPLETED: restic dump --archive zip, sha256, the link), against a bare
// `restic dump --archive zip` of the same snapshot into a file; then fetching the archive
// through the shipped nginx site (the local node: the worker checks the link, nginx sends the
// file by X-Accel-Redirect), against the same nginx serving the same bytes as a static file;
// and, for a node behind a remote nginx, the worker sending the bytes itself through nginx.
// Repetitions interleaved; ratios per pair.
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import pino from 'pino';
import { startDownloadServer } from '../../server/src/downloads/download-server.js';
import {
  nginxMainConfig,
  runNginx,
  selfSignedCertificate,
  writeAppSite,
} from '../../server/test/support/loopback-nginx.js';
import { freePort } from '../../server/test/support/sandbox.js';
import { runApiJob, workerIdle } from './backup.js';
import { type BenchWorld, WORKER_NODE } from './env.js';
import type { Measurement } from './report.js';
import type { BenchSite } from './site.js';
import { now } from './stats.js';

/**
 * GET through nginx by curl, the bytes hashed on their way by openssl (never kept): the count
 * and the sha256. The client is a process of its own, as a customer's browser is: in this
 * process its TLS and hashing shared one thread with the worker's download server it measures
 * (the worker runs in the bench's process), which then waited for its own client.
 */
async function fetchThrough(
  url: string,
  ca: string,
  port: number,
): Promise<{ bytes: number; sha256: string }> {
  const { stdout, stderr } = await execa(
    'bash',
    [
      '-c',
      'set -o pipefail; curl -sS --fail --cacert "$1" --resolve "backups.example.com:$2:127.0.0.1" -w "%{stderr}%{size_download}" -o - "$3" | openssl dgst -sha256 -r',
      'fetch',
      ca,
      String(port),
      url,
    ],
    { stripFinalNewline: true },
  );
  return { bytes: Number(stderr.trim()), sha256: stdout.split(' ')[0] ?? '' };
}

export async function measureDownload(
  world: BenchWorld,
  site: BenchSite,
  snapshotId: string,
  reps: number,
  log: (line: string) => void,
): Promise<Measurement> {
  const env = world.resticEnv(path.join(world.dataDir, 'repos', 'manual'));
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'bench-download-'));
  await chmod(scratch, 0o755);
  const build: number[] = [];
  const bare: number[] = [];
  const buildRatio: number[] = [];
  const serve: number[] = [];
  const statik: number[] = [];
  const serveRatio: number[] = [];
  const plainServe: number[] = [];
  const plainRatio: number[] = [];
  const rssDuring: number[] = [];
  const rssBefore: number[] = [];
  let sizeBytes = 0;
  let linkSha256 = '';
  let url = '';
  let stopNginx = async () => {};
  let stopPlain = async () => {};
  let plainPort = 0;
  try {
    await workerIdle(world);
    const content = `${snapshotId}:${path.join(site.siteDir, 'wordpress')}`;
    for (let i = 0; i < reps; i++) {
      rssBefore.push((await world.rssKb()).rss / 1024);
      // The api's memory while a build runs: sampled every 200 ms.
      let peak = 0;
      const sampler = setInterval(() => {
        void world.rssKb().then((r) => (peak = Math.max(peak, r.rss / 1024)));
      }, 200);
      let ms: number;
      let jobId: number;
      let phases: Record<string, number>;
      try {
        ({ ms, jobId, phases } = await runApiJob(
          world,
          'mutation($s: ID!, $c: ID!) { createDownload(snapshotId: $s, format: ZIP, customerId: $c) { $JOB } }',
          { s: snapshotId, c: String(site.customer.id) },
          3600_000,
        ));
      } finally {
        clearInterval(sampler);
      }
      rssDuring.push(peak);
      const job = await world.job(jobId);
      if (job.status !== 'completed')
        throw new Error(`download job ${jobId} ${job.status}: ${job.errorMessage}`);
      const t0 = now();
      await execa(
        'restic',
        ['dump', '--archive', 'zip', '--target', path.join(scratch, 'bare.zip'), content, '/'],
        { env },
      );
      const bareMs = now() - t0;
      build.push(ms / 1000);
      bare.push(bareMs / 1000);
      buildRatio.push(ms / bareMs);
      log(
        `  build ${i + 1}: api+worker ${(ms / 1000).toFixed(2)} s (${Object.entries(phases)
          .map(([phase, t]) => `${phase} ${(t / 1000).toFixed(2)}`)
          .join(', ')}), bare dump ${(bareMs / 1000).toFixed(2)} s`,
      );
      // Keep the newest link; the older archives go, so the customer stays under the live limit.
      const link = await world.gql(
        `query($id: ID!) { job(id: $id) { download { id url sizeBytes sha256 } } }`,
        { id: String(jobId) },
        world.adminToken,
      );
      const d = (
        link.data as {
          job: { download: { id: string; url: string; sizeBytes: number; sha256: string } };
        }
      ).job.download;
      url = d.url;
      sizeBytes = d.sizeBytes;
      linkSha256 = d.sha256;
      if (i < reps - 1) {
        // The customer stays under the live limit: older archives are revoked and deleted.
        await world.gql(
          'mutation($id: ID!) { revokeDownload(id: $id) { __typename } }',
          { id: d.id },
          world.adminToken,
        );
        await world.worker.sweepDownloads();
      }
    }

    // nginx: the shipped app site, its download location to the worker, the same archive as a
    // static file of the app's folder.
    const dist = path.join(scratch, 'dist');
    await mkdir(dist, { mode: 0o755 });
    await mkdir(path.join(scratch, 'tmp'));
    await writeFile(path.join(dist, 'index.html'), '<!doctype html>');
    const token = url.split('/').at(-1) as string;
    const file = await world.sql(
      `select file_name from \`${world.dbName}\`.downloads where token_hash = sha2('${token}', 256)`,
    );
    await copyFile(
      path.join(world.dataDir, 'downloads', file.trim()),
      path.join(dist, 'static.zip'),
    );
    await chmod(path.join(dist, 'static.zip'), 0o644);
    await chmod(path.join(dist, 'index.html'), 0o644);
    const certificate = await selfSignedCertificate(path.join(scratch, 'ssl'), {
      commonName: 'backups.example.com',
      altName: 'DNS:backups.example.com',
    });
    const httpsPort = await freePort();
    const downloadDir = path.join(world.dataDir, 'downloads');
    // (nginx's workers, nobody, pass through the data folder: createDataDir makes it 0711)
    const siteFile = await writeAppSite(scratch, {
      httpsPort,
      httpPort: await freePort(),
      certificate,
      dist,
      apiPort: await freePort(),
      downloads: { node: WORKER_NODE, port: world.worker.downloadPort, dir: downloadDir },
    });
    // A node elsewhere: its worker sends the bytes (no X-Accel-Redirect), through nginx.
    const plain = await startDownloadServer({
      orm: world.orm,
      config: {
        BACKUPS_NODE: WORKER_NODE,
        BACKUPS_DOWNLOAD_DIR: downloadDir,
        BACKUPS_DOWNLOAD_HOST: '127.0.0.1',
        BACKUPS_DOWNLOAD_PORT: 0,
        BACKUPS_DOWNLOAD_ACCEL_PREFIX: undefined,
      },
      logger: pino({ level: 'warn' }),
    });
    stopPlain = plain.close;
    const remotePrefix = path.join(scratch, 'remote');
    await mkdir(remotePrefix, { mode: 0o755 });
    plainPort = await freePort();
    const remoteFile = await writeAppSite(remotePrefix, {
      httpsPort: plainPort,
      httpPort: await freePort(),
      certificate,
      dist,
      apiPort: await freePort(),
      downloads: { node: WORKER_NODE, port: plain.port },
    });
    // one http {} for both sites: the second one's upstream and map renamed
    await writeFile(
      remoteFile,
      (await readFile(remoteFile, 'utf8'))
        .split('customer_backups_api')
        .join('customer_backups_api_remote')
        .split('$customer_backups_connection_upgrade')
        .join('$customer_backups_connection_upgrade_remote'),
    );
    const conf = path.join(scratch, 'nginx.conf');
    await writeFile(conf, nginxMainConfig(scratch, [siteFile, remoteFile]));
    ({ stop: stopNginx } = await runNginx(scratch, conf, httpsPort));
    const base = `https://backups.example.com:${httpsPort}`;
    const linkUrl = `${base}${new URL(url).pathname}`;
    // A fetch takes seconds where a build takes a minute: more of them, for a median that
    // holds against the other work on a shared machine.
    const serveReps = Math.max(reps, 5);
    for (let i = 0; i < serveReps; i++) {
      let t0 = now();
      const viaWorker = await fetchThrough(linkUrl, certificate.cert, httpsPort);
      const workerMs = now() - t0;
      t0 = now();
      const viaStatic = await fetchThrough(`${base}/static.zip`, certificate.cert, httpsPort);
      const staticMs = now() - t0;
      t0 = now();
      const viaPlain = await fetchThrough(
        `https://backups.example.com:${plainPort}${new URL(url).pathname}`,
        certificate.cert,
        plainPort,
      );
      const plainMs = now() - t0;
      if (
        viaWorker.sha256 !== linkSha256 ||
        viaStatic.sha256 !== linkSha256 ||
        viaPlain.sha256 !== linkSha256 ||
        viaWorker.bytes !== sizeBytes
      ) {
        throw new Error('the served archive differs from the file');
      }
      const mbps = (ms: number) => sizeBytes / 1e6 / (ms / 1000);
      serve.push(mbps(workerMs));
      statik.push(mbps(staticMs));
      serveRatio.push(staticMs / workerMs);
      plainServe.push(mbps(plainMs));
      plainRatio.push(staticMs / plainMs);
      log(
        `  serve ${i + 1}: link (nginx sends) ${mbps(workerMs).toFixed(0)} MB/s, nginx static ${mbps(staticMs).toFixed(0)} MB/s, link (worker sends) ${mbps(plainMs).toFixed(0)} MB/s`,
      );
    }
  } finally {
    await stopNginx();
    await stopPlain();
    await rm(scratch, { recursive: true, force: true });
  }
  return {
    id: 10,
    title: 'Downloads: building a ZIP, serving it through nginx',
    setup: `site of ${site.files} files (${(site.filesBytes / 2 ** 20).toFixed(0)} MiB), archive ${(sizeBytes / 1e6).toFixed(1)} MB; createDownload(ZIP) through the api until COMPLETED vs bare restic dump --archive zip --target; GET of the link by curl (its own process, bytes hashed by openssl on the way) through the shipped nginx site (TLS): the local node's location (the worker checks the token and answers X-Accel-Redirect, nginx sends the file from its internal location), the same nginx serving the same file statically, and a second site whose location proxies to a download server that sends the bytes itself (a node behind a remote nginx); ${reps} builds and ${Math.max(reps, 5)} fetches of each, interleaved`,
    figures: [
      { name: 'build through api + worker', unit: 's', values: build },
      { name: 'bare restic dump --archive zip', unit: 's', values: bare },
      {
        name: 'build / bare dump',
        unit: 'x',
        values: buildRatio,
        target: '<= 1.2',
        pass: Math.max(...buildRatio) <= 1.2,
      },
      {
        name: 'the link, local node (worker checks, nginx sends the file)',
        unit: 'MB/s',
        values: serve,
      },
      { name: 'nginx static file', unit: 'MB/s', values: statik },
      {
        name: 'link speed / static speed',
        unit: 'x',
        values: serveRatio,
        target: '>= 0.9',
        pass: Math.min(...serveRatio) >= 0.9,
      },
      {
        name: 'the link, a node behind a remote nginx (the worker sends the bytes)',
        unit: 'MB/s',
        values: plainServe,
      },
      { name: 'worker-sent speed / static speed', unit: 'x', values: plainRatio },
      { name: 'api resident memory before a build', unit: 'MiB', values: rssBefore },
      { name: 'api resident memory during a build (peak)', unit: 'MiB', values: rssDuring },
    ],
    limits:
      'the build is restic dump itself (Deflate of incompressible files, one core) plus the listing that checks the snapshot and sizes the download, and the job round trip; the sha256 is taken while the archive is written. Serving: nginx TLS and curl share 2 cores; on the local node nginx reads the file as for a static one (the worker answers a header); a worker that sends the bytes itself copies them from the page cache to the socket nginx reads, which costs a share of a core (its figure is informational: the target is the shipped local node)',
  };
}
