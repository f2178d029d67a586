import path from 'node:path';
import type { EndpointDeclaration } from '../config/config-file.ts';
import type { Config } from '../config/load.ts';

/** An endpoint's own limits and tus extensions over the flag-defined ones. */
function ownSettings(endpoint: EndpointDeclaration | undefined): Partial<Config> {
  return {
    ...(endpoint?.maxFileSize !== undefined ? { maxFileSize: endpoint.maxFileSize } : {}),
    ...(endpoint?.maxBodySize !== undefined ? { maxBodySize: endpoint.maxBodySize } : {}),
    ...(endpoint?.extensions !== undefined ? { extensions: endpoint.extensions } : {}),
  };
}

/**
 * The configuration each endpoint is served with: the flag-defined one for the default endpoint (`--url`),
 * and for every other endpoint of the config file its own path, data folder, limits and tus extensions
 * (each falling back to its flag). An endpoint without
 * `dataDir` keeps its uploads (bytes and records) under `<data-dir>/<path>` and `<info-dir>/<path>`, so
 * endpoints never see each other's uploads.
 */
export function endpointConfigs(config: Config, declared: readonly EndpointDeclaration[]): Config[] {
  const own = declared.find((endpoint) => endpoint.path === config.basePath);
  const main: Config = Object.freeze({
    ...config,
    ...(own?.dataDir !== undefined ? { dataDir: own.dataDir } : {}),
    ...ownSettings(own),
  });
  const others = declared
    .filter((endpoint) => endpoint.path !== config.basePath)
    .map((endpoint): Config => {
      const folder = endpoint.path.slice(1).replaceAll('/', '_');
      return Object.freeze({
        ...config,
        basePath: endpoint.path,
        dataDir: endpoint.dataDir ?? path.join(config.dataDir, folder),
        infoDir: endpoint.dataDir ?? path.join(config.infoDir, folder),
        ...ownSettings(endpoint),
      });
    });
  return [main, ...others];
}
