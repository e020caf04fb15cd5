import { graphql } from '../graphql/graphql';

export const StaffViewerQuery = graphql(`
  query StaffViewer {
    staffMe {
      id
      name
      email
    }
  }
`);

export const StaffSignInMutation = graphql(`
  mutation StaffSignIn($email: String!, $password: String!) {
    staffSignIn(email: $email, password: $password) {
      __typename
      ... on StaffSignInSuccess {
        staff {
          id
        }
      }
      ... on Error {
        message
      }
    }
  }
`);

export const AdminNodesQuery = graphql(`
  query AdminNodes {
    adminNodes {
      node
      workerAlive
      running
      pending
      customers
      staleCustomers
      dailyDone
      dailyFailed
      dailyMissing
      jobsQueue {
        waiting
      }
      dailyQueue {
        waiting
      }
    }
  }
`);

export const AdminCustomersQuery = graphql(`
  query AdminCustomers($search: String!) {
    adminCustomers(search: $search) {
      id
      email
      name
      host
    }
  }
`);

export const AdminCustomerQuery = graphql(`
  query AdminCustomer($id: ID!) {
    customer(id: $id) {
      id
      email
      name
      host
      jobs(limit: 10) {
        id
        kind
        scope
        status
        errorCode
        createdAt
      }
      manual: snapshots(source: MANUAL) {
        id
        shortId
        scope
        createdAt
      }
      daily: snapshots(source: DAILY) {
        id
        shortId
        scope
        createdAt
      }
    }
  }
`);

export const AdminCreateBackupMutation = graphql(`
  mutation AdminCreateBackup($customerId: ID!, $scope: BackupScope!) {
    createBackup(scope: $scope, customerId: $customerId) {
      __typename
      ... on CreateBackupSuccess {
        job {
          id
        }
      }
      ... on Error {
        message
      }
    }
  }
`);

export const AdminRestoreMutation = graphql(`
  mutation AdminRestore($customerId: ID!, $snapshotId: ID!, $scope: BackupScope!) {
    restoreSnapshot(
      snapshotId: $snapshotId
      scope: $scope
      confirmation: "RESTORE"
      customerId: $customerId
    ) {
      __typename
      ... on RestoreSnapshotSuccess {
        job {
          id
        }
      }
      ... on Error {
        message
      }
    }
  }
`);
