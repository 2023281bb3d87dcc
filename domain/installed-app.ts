/** A tenant's installation of an app as a connector sees it: plain settings and opened secrets. */
export interface InstalledApp {
  configuration: Record<string, unknown>;
  secrets: Record<string, string>;
}
