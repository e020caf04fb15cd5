import { graphql, type ResultOf } from './graphql';

export const SnapshotFields = graphql(`
  fragment SnapshotFields on Snapshot {
    id
    shortId
    source
    scope
    createdAt
    label
    sizeBytes
    verification {
      status
      verifiedAt
      restoreSeconds
      problem
    }
  }
`);

export const DownloadFields = graphql(`
  fragment DownloadFields on Download {
    id
    url
    expiresAt
    sizeBytes
    sha256
    format
    fileName
    database
    paths
    createdAt
  }
`);

export const JobFields = graphql(
  `
  fragment JobFields on BackupJob {
    id
    kind
    scope
    source
    status
    phase
    progress
    bytesDone
    bytesTotal
    etaSeconds
    label
    errorCode
    errorMessage
    createdAt
    startedAt
    finishedAt
    snapshot {
      ...SnapshotFields
    }
    safetySnapshot {
      ...SnapshotFields
    }
    download {
      ...DownloadFields
    }
  }
`,
  [SnapshotFields, DownloadFields],
);

export const ErrorFields = graphql(`
  fragment ErrorFields on Error {
    code
    message
  }
`);

export const ViewerQuery = graphql(`
  query Viewer {
    me {
      id
      name
      email
    }
  }
`);

export const BackupsPageQuery = graphql(
  `
  query BackupsPage {
    me {
      id
      activeJob {
        ...JobFields
      }
      jobs(limit: 10) {
        ...JobFields
      }
      manual: snapshots(source: MANUAL) {
        ...SnapshotFields
      }
      daily: snapshots(source: DAILY) {
        ...SnapshotFields
      }
      safety: snapshots(source: SAFETY) {
        ...SnapshotFields
      }
      downloads {
        ...DownloadFields
      }
    }
  }
`,
  [JobFields, SnapshotFields, DownloadFields],
);

export const ApiTokensQuery = graphql(`
  query ApiTokens {
    me {
      id
      apiTokens {
        id
        name
        prefix
        createdAt
        lastUsedAt
      }
    }
  }
`);

export const CustomerJobsSubscription = graphql(
  `
  subscription CustomerJobs {
    customerJobs {
      ...JobFields
    }
  }
`,
  [JobFields],
);

export const SignInMutation = graphql(
  `
  mutation SignIn($email: String!, $password: String!) {
    signIn(email: $email, password: $password) {
      __typename
      ... on SignInSuccess {
        customer {
          id
          name
          email
        }
      }
      ...ErrorFields
    }
  }
`,
  [ErrorFields],
);

export const SignOutMutation = graphql(`
  mutation SignOut {
    signOut
  }
`);

export const CreateBackupMutation = graphql(
  `
  mutation CreateBackup($scope: BackupScope!, $label: String) {
    createBackup(scope: $scope, label: $label) {
      __typename
      ... on CreateBackupSuccess {
        job {
          ...JobFields
        }
      }
      ...ErrorFields
    }
  }
`,
  [JobFields, ErrorFields],
);

export const RestoreSnapshotMutation = graphql(
  `
  mutation RestoreSnapshot(
    $snapshotId: ID!
    $scope: BackupScope!
    $confirmation: String!
    $paths: [String!]
    $tables: [String!]
  ) {
    restoreSnapshot(
      snapshotId: $snapshotId
      scope: $scope
      confirmation: $confirmation
      paths: $paths
      tables: $tables
    ) {
      __typename
      ... on RestoreSnapshotSuccess {
        job {
          ...JobFields
        }
      }
      ...ErrorFields
    }
  }
`,
  [JobFields, ErrorFields],
);

export const VerifySnapshotMutation = graphql(
  `
  mutation VerifySnapshot($snapshotId: ID!) {
    verifySnapshot(snapshotId: $snapshotId) {
      __typename
      ... on VerifySnapshotSuccess {
        job {
          ...JobFields
        }
      }
      ...ErrorFields
    }
  }
`,
  [JobFields, ErrorFields],
);

export const CancelJobMutation = graphql(
  `
  mutation CancelJob($id: ID!) {
    cancelJob(id: $id) {
      __typename
      ... on CancelJobSuccess {
        job {
          ...JobFields
        }
      }
      ...ErrorFields
    }
  }
`,
  [JobFields, ErrorFields],
);

export const CreateApiTokenMutation = graphql(
  `
  mutation CreateApiToken($name: String!) {
    createApiToken(name: $name) {
      __typename
      ... on CreateApiTokenSuccess {
        token
        apiToken {
          id
          name
          prefix
          createdAt
          lastUsedAt
        }
      }
      ...ErrorFields
    }
  }
`,
  [ErrorFields],
);

export const RevokeApiTokenMutation = graphql(`
  mutation RevokeApiToken($id: ID!) {
    revokeApiToken(id: $id)
  }
`);

export const EntryFields = graphql(`
  fragment EntryFields on SnapshotEntry {
    path
    name
    type
    sizeBytes
    modifiedAt
  }
`);

export const BrowseSnapshotQuery = graphql(
  `
  query BrowseSnapshot($id: ID!) {
    me {
      id
      activeJob {
        ...JobFields
      }
      jobs(limit: 10) {
        ...JobFields
      }
      snapshot(id: $id) {
        ...SnapshotFields
        indexed
        indexJob {
          ...JobFields
        }
      }
    }
  }
`,
  [SnapshotFields, JobFields],
);

export const FolderQuery = graphql(
  `
  query Folder($id: ID!, $path: String!, $after: String) {
    me {
      id
      snapshot(id: $id) {
        id
        entries(path: $path, after: $after) {
          entries {
            ...EntryFields
          }
          endCursor
          hasMore
        }
      }
    }
  }
`,
  [EntryFields],
);

export const SearchQuery = graphql(
  `
  query SearchSnapshot($id: ID!, $name: String!) {
    me {
      id
      snapshot(id: $id) {
        id
        search(name: $name) {
          ...EntryFields
        }
      }
    }
  }
`,
  [EntryFields],
);

export const TablesQuery = graphql(`
  query SnapshotTables($id: ID!) {
    me {
      id
      snapshot(id: $id) {
        id
        tables {
          name
          sizeBytes
        }
      }
    }
  }
`);

export const ChangesQuery = graphql(
  `
  query SnapshotChanges($id: ID!) {
    me {
      id
      snapshot(id: $id) {
        id
        changes {
          since {
            ...SnapshotFields
          }
          added {
            ...EntryFields
          }
          removed {
            ...EntryFields
          }
          modified {
            ...EntryFields
          }
          tablesAdded
          tablesRemoved
          truncated
        }
      }
    }
  }
`,
  [SnapshotFields, EntryFields],
);

export const IndexSnapshotMutation = graphql(
  `
  mutation IndexSnapshot($snapshotId: ID!) {
    indexSnapshot(snapshotId: $snapshotId) {
      __typename
      ... on IndexSnapshotSuccess {
        job {
          ...JobFields
        }
        snapshot {
          id
          indexed
        }
      }
      ...ErrorFields
    }
  }
`,
  [JobFields, ErrorFields],
);

export const CreateDownloadMutation = graphql(
  `
  mutation CreateDownload($snapshotId: ID!, $paths: [String!], $database: Boolean, $format: ArchiveFormat) {
    createDownload(snapshotId: $snapshotId, paths: $paths, database: $database, format: $format) {
      __typename
      ... on CreateDownloadSuccess {
        job {
          ...JobFields
        }
      }
      ...ErrorFields
    }
  }
`,
  [JobFields, ErrorFields],
);

export const RevokeDownloadMutation = graphql(
  `
  mutation RevokeDownload($id: ID!) {
    revokeDownload(id: $id) {
      __typename
      ...ErrorFields
    }
  }
`,
  [ErrorFields],
);

export type Snapshot = ResultOf<typeof SnapshotFields>;
export type Entry = ResultOf<typeof EntryFields>;
export type Download = ResultOf<typeof DownloadFields>;
export type ArchiveFormat = Download['format'];
export type Job = ResultOf<typeof JobFields>;
export type ApiToken = NonNullable<
  NonNullable<ResultOf<typeof ApiTokensQuery>['me']>['apiTokens']
>[number];
export type BackupScope = Job['scope'];
export type SnapshotSource = Snapshot['source'];

export const NotificationsQuery = graphql(`
  query Notifications {
    webhookEvents
    me {
      id
      notificationSettings {
        restoreCompleted
        restoreFailed
        dailyBackupFailedTwice
        drillFailed
      }
      webhooks {
        id
        url
        events
        createdAt
        deliveries(first: 10) {
          hasMore
          deliveries {
            id
            event
            status
            attempt
            statusCode
            createdAt
            nextRetryAt
          }
        }
      }
    }
  }
`);

export const UpdateNotificationSettingsMutation = graphql(
  `
  mutation UpdateNotificationSettings(
    $restoreCompleted: Boolean
    $restoreFailed: Boolean
    $dailyBackupFailedTwice: Boolean
    $drillFailed: Boolean
  ) {
    updateNotificationSettings(
      restoreCompleted: $restoreCompleted
      restoreFailed: $restoreFailed
      dailyBackupFailedTwice: $dailyBackupFailedTwice
      drillFailed: $drillFailed
    ) {
      __typename
      ... on NotificationSettings {
        restoreCompleted
        restoreFailed
        dailyBackupFailedTwice
        drillFailed
      }
      ...ErrorFields
    }
  }
`,
  [ErrorFields],
);

export const CreateWebhookMutation = graphql(
  `
  mutation CreateWebhook($url: String!, $events: [String!]!) {
    createWebhook(url: $url, events: $events) {
      __typename
      ... on CreateWebhookSuccess {
        secret
        webhook {
          id
          url
        }
      }
      ...ErrorFields
    }
  }
`,
  [ErrorFields],
);

export const DeleteWebhookMutation = graphql(`
  mutation DeleteWebhook($id: ID!) {
    deleteWebhook(id: $id)
  }
`);

export const RedeliverWebhookMutation = graphql(`
  mutation RedeliverWebhook($deliveryId: ID!) {
    redeliverWebhook(deliveryId: $deliveryId)
  }
`);

export type Webhook = NonNullable<
  NonNullable<ResultOf<typeof NotificationsQuery>['me']>['webhooks']
>[number];
export type NotificationSettings = NonNullable<
  ResultOf<typeof NotificationsQuery>['me']
>['notificationSettings'];

export const SingleSignOnQuery = graphql(`
  query SingleSignOn {
    singleSignOn {
      name
      startUrl
    }
  }
`);
