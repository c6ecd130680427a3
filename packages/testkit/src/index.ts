export const PACKAGE_NAME = '@codefeedr/testkit';
