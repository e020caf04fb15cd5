// The application database of a test file is made in sandbox.ts; the test files import it here.
export { createTestDatabase, type TestDatabase } from './sandbox.js';
