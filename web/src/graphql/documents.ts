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
  mutation RestoreSnapshot($snapshotId: ID!, $scope: BackupScope!, $confirmation: String!) {
    restoreSnapshot(snapshotId: $snapshotId, scope: $scope, confirmation: $confirmation) {
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
export type Download = ResultOf<typeof DownloadFields>;
export type ArchiveFormat = Download['format'];
export type Job = ResultOf<typeof JobFields>;
export type ApiToken = NonNullable<
  NonNullable<ResultOf<typeof ApiTokensQuery>['me']>['apiTokens']
>[number];
export type BackupScope = Job['scope'];
export type SnapshotSource = Snapshot['source'];
